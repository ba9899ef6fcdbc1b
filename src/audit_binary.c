/*-------------------------------------------------------------------------
 *
 * audit_binary.c
 *	  The audit trail's binary records: the layout a backend writes for
 *	  each audit line (audit_log.c builds them) and the one function that
 *	  formats a record as the JSON line docs/audit.md documents, used by
 *	  the audit writer (audit_writer.c, in its SIGQUIT handler too) and by
 *	  a backend that writes its lines itself or to the server log
 *	  (audit_file.c, audit_log.c).
 *
 *	  A backend only copies: the header's numbers, and the names it has
 *	  already memorised (database, roles, purpose, relations, tags) as
 *	  length-prefixed bytes, since the writer has no database to look them
 *	  up in.  After the header (audit_binary.h), in this order:
 *
 *		database							string
 *		not "lost": user, session_user, purpose, command		strings
 *		"denial": reason, sqlstate			strings
 *		each relation: its name				string
 *			"read": rows_seen, rows_hidden	numbers
 *		each tag: its name					string
 *			"read": cells_served, cells_masked, rows_hidden	numbers
 *		"denial" with PFG_AUDIT_BIN_EXTRA_TAG: the tag	string
 *
 *	  A string is a uint32 length (PFG_AUDIT_BIN_NULL: null) and its bytes;
 *	  a number is an int64.
 *
 *	  The formatting calls no function that allocates, locks or is not
 *	  async-signal-safe (no palloc, no elog, no snprintf): numbers, the
 *	  timestamp and JSON escaping are done here by hand, so that the writer
 *	  can format what is complete in the buffer from its SIGQUIT handler.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <unistd.h>

#include "miscadmin.h"
#include "utils/timestamp.h"

#include "audit_binary.h"

#define PFG_AUDIT_BIN_NULL	PG_UINT32_MAX

/* ---------------------------------------------------------------------
 * Building (a backend)
 * ---------------------------------------------------------------------
 */

int
pfg_audit_bin_begin(StringInfo buf, const PfgAuditBinHeader *header)
{
	int			start = buf->len;
	PfgAuditBinHeader h = *header;

	h.len = 0;
	h.unused = 0;
	h.pid = MyProcPid;
	h.ts = GetCurrentTimestamp();
	appendBinaryStringInfoNT(buf, (const char *) &h, sizeof(h));
	return start;
}

void
pfg_audit_bin_str(StringInfo buf, const char *value)
{
	uint32		len = value ? (uint32) strlen(value) : PFG_AUDIT_BIN_NULL;

	enlargeStringInfo(buf, sizeof(len) + (value ? len : 0));
	memcpy(buf->data + buf->len, &len, sizeof(len));
	buf->len += sizeof(len);
	if (value)
	{
		memcpy(buf->data + buf->len, value, len);
		buf->len += len;
	}
}

void
pfg_audit_bin_num(StringInfo buf, int64 value)
{
	appendBinaryStringInfoNT(buf, (const char *) &value, sizeof(value));
}

void
pfg_audit_bin_end(StringInfo buf, int start)
{
	uint32		len = buf->len - start;

	memcpy(buf->data + start + offsetof(PfgAuditBinHeader, len), &len, sizeof(len));
}

/* ---------------------------------------------------------------------
 * Formatting (anyone; async-signal-safe)
 * ---------------------------------------------------------------------
 */

/* the record being read; bad once a field would pass its end */
typedef struct Reader
{
	const char *p;
	const char *end;
	bool		bad;
} Reader;

static void
put(PfgAuditSink *sink, const char *data, int len)
{
	while (len > 0)
	{
		int			n;

		if (sink->len == sink->size)
			sink->flush(sink);
		n = Min(len, sink->size - sink->len);
		memcpy(sink->buf + sink->len, data, n);
		sink->len += n;
		data += n;
		len -= n;
	}
}

#define put_lit(sink, literal)	put(sink, literal, sizeof(literal) - 1)

static void
put_char(PfgAuditSink *sink, char c)
{
	if (sink->len == sink->size)
		sink->flush(sink);
	sink->buf[sink->len++] = c;
}

static void
put_uint(PfgAuditSink *sink, uint64 value)
{
	char		digits[24];
	int			i = sizeof(digits);

	do
	{
		digits[--i] = '0' + value % 10;
		value /= 10;
	} while (value > 0);
	put(sink, digits + i, sizeof(digits) - i);
}

static void
put_int(PfgAuditSink *sink, int64 value)
{
	if (value < 0)
	{
		put_char(sink, '-');
		put_uint(sink, (uint64) 0 - (uint64) value);
	}
	else
		put_uint(sink, (uint64) value);
}

/* n as exactly width digits, zeros before */
static void
put_fixed(PfgAuditSink *sink, int n, int width)
{
	char		digits[8];

	for (int i = width - 1; i >= 0; i--)
	{
		digits[i] = '0' + n % 10;
		n /= 10;
	}
	put(sink, digits, width);
}

/*
 * A string as JSON: what escape_json() writes for it (utils/adt/json.c),
 * a run of bytes that need no escaping copied at once.
 */
static void
put_json_string(PfgAuditSink *sink, const char *s, uint32 len)
{
	static const char hex[] = "0123456789abcdef";
	const char *run = s;
	const char *end = s + len;

	put_char(sink, '"');
	for (const char *p = s; p < end; p++)
	{
		unsigned char c = (unsigned char) *p;
		const char *esc;

		if (c >= 0x20 && c != '"' && c != '\\')
			continue;
		put(sink, run, p - run);
		run = p + 1;
		switch (c)
		{
			case '\b':
				esc = "\\b";
				break;
			case '\f':
				esc = "\\f";
				break;
			case '\n':
				esc = "\\n";
				break;
			case '\r':
				esc = "\\r";
				break;
			case '\t':
				esc = "\\t";
				break;
			case '"':
				esc = "\\\"";
				break;
			case '\\':
				esc = "\\\\";
				break;
			default:
				{
					char		u[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};

					put(sink, u, 6);
					continue;
				}
		}
		put(sink, esc, 2);
	}
	put(sink, run, end - run);
	put_char(sink, '"');
}

static int64
read_num(Reader *r)
{
	int64		value = 0;

	if (r->end - r->p < (ptrdiff_t) sizeof(value))
		r->bad = true;
	else
	{
		memcpy(&value, r->p, sizeof(value));
		r->p += sizeof(value);
	}
	return value;
}

/* a string field, as JSON (null, or the string) */
static void
put_str_field(PfgAuditSink *sink, Reader *r)
{
	uint32		len;

	if (r->end - r->p < (ptrdiff_t) sizeof(len))
	{
		r->bad = true;
		return;
	}
	memcpy(&len, r->p, sizeof(len));
	r->p += sizeof(len);
	if (len == PFG_AUDIT_BIN_NULL)
		put_lit(sink, "null");
	else if (len > (uint32) (r->end - r->p))
		r->bad = true;
	else
	{
		put_json_string(sink, r->p, len);
		r->p += len;
	}
}

static void
skip_str_field(Reader *r)
{
	uint32		len;

	if (r->end - r->p < (ptrdiff_t) sizeof(len))
		r->bad = true;
	else
	{
		memcpy(&len, r->p, sizeof(len));
		r->p += sizeof(len);
		if (len != PFG_AUDIT_BIN_NULL && len > (uint32) (r->end - r->p))
			r->bad = true;
		else if (len != PFG_AUDIT_BIN_NULL)
			r->p += len;
	}
}

/* "ts": UTC, to the millisecond, ISO 8601 */
static void
put_ts(PfgAuditSink *sink, TimestampTz ts)
{
	int64		usecs = ts + (int64) (POSTGRES_EPOCH_JDATE - UNIX_EPOCH_JDATE) * USECS_PER_DAY;
	int64		days = usecs / USECS_PER_DAY;
	int64		rest = usecs % USECS_PER_DAY;
	int64		z,
				era,
				doe,
				yoe,
				doy,
				mp;
	int			year,
				month,
				day;

	if (rest < 0)
	{
		rest += USECS_PER_DAY;
		days--;
	}
	/* the civil date of a day since 1970-01-01 (proleptic Gregorian) */
	z = days + 719468;
	era = (z >= 0 ? z : z - 146096) / 146097;
	doe = z - era * 146097;
	yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	mp = (5 * doy + 2) / 153;
	day = (int) (doy - (153 * mp + 2) / 5 + 1);
	month = (int) (mp < 10 ? mp + 3 : mp - 9);
	year = (int) (yoe + era * 400 + (month <= 2));

	put_lit(sink, "{\"ts\":\"");
	put_fixed(sink, year, 4);
	put_char(sink, '-');
	put_fixed(sink, month, 2);
	put_char(sink, '-');
	put_fixed(sink, day, 2);
	put_char(sink, 'T');
	put_fixed(sink, (int) (rest / USECS_PER_HOUR), 2);
	put_char(sink, ':');
	put_fixed(sink, (int) (rest / USECS_PER_MINUTE % 60), 2);
	put_char(sink, ':');
	put_fixed(sink, (int) (rest / USECS_PER_SEC % 60), 2);
	put_char(sink, '.');
	put_fixed(sink, (int) (rest % USECS_PER_SEC / 1000), 3);
	put_lit(sink, "Z\"");
}

/* the counts of a read, or their nulls for a bypass read */
static void
put_counts(PfgAuditSink *sink, Reader *r, const PfgAuditBinHeader *h,
		   const char *const *keys, int nkeys)
{
	for (int k = 0; k < nkeys; k++)
	{
		put(sink, keys[k], strlen(keys[k]));
		if (h->event == PFG_AUDIT_EVENT_READ)
			put_int(sink, read_num(r));
		else
			put_lit(sink, "null");
	}
	put_char(sink, '}');
}

/*
 * The elements of "relations" or "tags": for a denial their names, for a
 * read objects of a name (opened by name_key) and counts.
 */
static void
put_list(PfgAuditSink *sink, Reader *r, const PfgAuditBinHeader *h, uint32 n,
		 const char *name_key, const char *const *keys, int nkeys)
{
	bool		read = (h->event != PFG_AUDIT_EVENT_DENIAL);

	for (uint32 i = 0; i < n && !r->bad; i++)
	{
		if (i > 0)
			put_char(sink, ',');
		if (read)
			put(sink, name_key, strlen(name_key));
		put_str_field(sink, r);
		if (read)
			put_counts(sink, r, h, keys, nkeys);
	}
}

static const char *const RelationCounts[] = {",\"rows_seen\":", ",\"rows_hidden\":"};
static const char *const TagCounts[] = {",\"cells_served\":", ",\"cells_masked\":", ",\"rows_hidden\":"};

uint32
pfg_audit_bin_format(const char *rec, uint32 avail, bool file_keys, PfgAuditSink *sink)
{
	PfgAuditBinHeader h;
	Reader		r;
	int			line_start = sink->len;
	int			flushes = sink->flushes;
	bool		read;

	if (avail < sizeof(h))
		return 0;
	memcpy(&h, rec, sizeof(h));
	if (h.len < sizeof(h) || h.len > avail || h.event > PFG_AUDIT_EVENT_LOST)
		return 0;
	r.p = rec + sizeof(h);
	r.end = rec + h.len;
	r.bad = false;
	read = (h.event == PFG_AUDIT_EVENT_READ || h.event == PFG_AUDIT_EVENT_BYPASS_READ);

	if (file_keys)
	{
		put_ts(sink, h.ts);
		put_lit(sink, ",\"pid\":");
		put_int(sink, h.pid);
		put_lit(sink, ",\"database\":");
		put_str_field(sink, &r);
		put_char(sink, ',');
	}
	else
	{
		put_char(sink, '{');
		skip_str_field(&r);		/* the database is the file's key */
	}
	if (h.event == PFG_AUDIT_EVENT_LOST)
	{
		put_lit(sink, "\"event\":\"lost\",\"statements\":");
		put_int(sink, (int64) h.count);
	}
	else
	{
		put_lit(sink, "\"event\":");
		if (h.event == PFG_AUDIT_EVENT_READ)
			put_lit(sink, "\"read\"");
		else if (h.event == PFG_AUDIT_EVENT_BYPASS_READ)
			put_lit(sink, "\"bypass_read\"");
		else
			put_lit(sink, "\"denial\"");
		put_lit(sink, ",\"user\":");
		put_str_field(sink, &r);
		put_lit(sink, ",\"session_user\":");
		put_str_field(sink, &r);
		put_lit(sink, ",\"purpose\":");
		put_str_field(sink, &r);
		put_lit(sink, ",\"purpose_version\":");
		if (h.purpose_version > 0)
			put_int(sink, h.purpose_version);
		else
			put_lit(sink, "null");
		put_lit(sink, ",\"command\":");
		put_str_field(sink, &r);
		put_lit(sink, ",\"level\":");
		put_int(sink, h.level);
		if (!read)
		{
			put_lit(sink, ",\"reason\":");
			put_str_field(sink, &r);
			put_lit(sink, ",\"sqlstate\":");
			put_str_field(sink, &r);
		}
		put_lit(sink, ",\"relations\":[");
		put_list(sink, &r, &h, h.nrels, "{\"relation\":", RelationCounts, lengthof(RelationCounts));
		put_lit(sink, "],\"tags\":[");
		put_list(sink, &r, &h, h.ntags, "{\"tag\":", TagCounts, lengthof(TagCounts));
		if (!read && (h.flags & PFG_AUDIT_BIN_EXTRA_TAG))
		{
			if (h.ntags > 0)
				put_char(sink, ',');
			put_str_field(sink, &r);
		}
		put_char(sink, ']');
		if (read)
		{
			put_lit(sink, ",\"rows_processed\":");
			put_uint(sink, h.count);
			if (h.flags & PFG_AUDIT_BIN_COMPLETED)
				put_lit(sink, ",\"completed\":true");
			else
				put_lit(sink, ",\"completed\":false");
		}
	}
	if (file_keys)
		put_lit(sink, "}\n");
	else
		put_char(sink, '}');

	if (r.bad || r.p != r.end)
	{
		/* not a record we wrote: nothing of it, where it can be taken back */
		if (sink->flushes == flushes)
			sink->len = line_start;
		return 0;
	}
	return h.len;
}

/* ---------------------------------------------------------------------
 * Sinks
 * ---------------------------------------------------------------------
 */

/* a StringInfo's room: the sink writes in place, and grows it */
static void
text_flush(PfgAuditSink *sink)
{
	StringInfo	out = (StringInfo) sink->arg;

	out->len = sink->len;
	enlargeStringInfo(out, Max(out->maxlen, 1024));
	sink->buf = out->data;
	sink->size = out->maxlen - 1;
}

void
pfg_audit_bin_to_text(const char *data, int len, bool file_keys, StringInfo out)
{
	PfgAuditSink sink = {out->data, out->len, out->maxlen - 1, text_flush, out, 0};
	int			pos = 0;

	while (pos < len)
	{
		uint32		n = pfg_audit_bin_format(data + pos, len - pos, file_keys, &sink);

		if (n == 0)
			break;				/* not a record: stop rather than guess */
		pos += n;
	}
	out->len = sink.len;
	out->data[out->len] = '\0';
}

/* a static buffer, written out to a file descriptor as it fills */
static char FdBuffer[16384];
static bool FdFailed;

static void
fd_write(PfgAuditSink *sink)
{
	const char *p = sink->buf;
	int			left = sink->len;

	while (left > 0 && !FdFailed)
	{
		ssize_t		written = write(*(int *) sink->arg, p, left);

		if (written < 0 && errno == EINTR)
			continue;
		if (written <= 0)
			FdFailed = true;	/* the rest is dropped */
		else
		{
			p += written;
			left -= written;
		}
	}
	sink->len = 0;
	sink->flushes++;
}

void
pfg_audit_bin_to_fd(const char *data, uint32 len, int fd)
{
	PfgAuditSink sink = {FdBuffer, 0, sizeof(FdBuffer), fd_write, &fd, 0};
	uint32		pos = 0;

	while (pos < len && !FdFailed)
	{
		uint32		n = pfg_audit_bin_format(data + pos, len - pos, true, &sink);

		if (n == 0)
			break;
		pos += n;
	}
	fd_write(&sink);
}
