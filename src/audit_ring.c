/*-------------------------------------------------------------------------
 *
 * audit_ring.c
 *	  The shared buffer of audit lines, in shared memory, and its setting
 *	  profile_guard.audit_buffer_size.  At the end of a statement a backend
 *	  copies its lines, as binary records (audit_binary.c), into the buffer
 *	  instead of making a write() of its own; the audit writer
 *	  (audit_writer.c) takes them out in the order they were put, formats
 *	  them and appends them to the audit file.  This file only moves bytes.
 *
 *	  The buffer is a ring of entries, each a header (length, state) and
 *	  the lines of one statement, 8-byte aligned.  A backend reserves room
 *	  under a spinlock (a few instructions), copies its lines outside it
 *	  and then marks the entry complete; the writer takes complete entries
 *	  up to the first that is still being copied, and gives their room
 *	  back once it has written them.  An entry that would cross the end of
 *	  the ring is preceded by a padding entry that fills the rest.  With no
 *	  writer attached, or no room, pfg_audit_ring_put() says so and the
 *	  backend writes its lines itself (audit_file.c).
 *
 *	  When the server crashes the writer is told to quit at once (SIGQUIT)
 *	  while shared memory is still there: it writes what is complete and
 *	  not yet written (pfg_audit_ring_drain), so a backend killed
 *	  after its statement ended loses none of that statement's lines.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <unistd.h>

#include "miscadmin.h"
#include "port/atomics.h"
#include "storage/shmem.h"
#include "storage/spin.h"
#include "utils/guc.h"

#include "audit_ring.h"

/* an entry's state */
#define ENTRY_COPYING	0		/* reserved, the lines being copied in */
#define ENTRY_COMPLETE	1
#define ENTRY_PADDING	2		/* fills the ring's end; holds nothing */

typedef struct RingEntry
{
	uint32		len;			/* bytes of lines after the header */
	volatile uint32 state;
} RingEntry;

#define ENTRY_SIZE(len)		MAXALIGN(sizeof(RingEntry) + (len))

typedef struct AuditRing
{
	slock_t		mutex;			/* protects the fields up to data */
	bool		writer_attached;
	bool		wake_sent;		/* the writer's latch was set since it last took */
	Latch	   *writer_latch;
	volatile uint64 reserved;	/* bytes handed out since start-up */
	volatile uint64 released;	/* bytes written and given back */
	uint64		data[FLEXIBLE_ARRAY_MEMBER];	/* the ring, ring_bytes long */
} AuditRing;

static int	audit_buffer_kb = 1024;
static AuditRing *Ring = NULL;

/* the ring's size in bytes: the setting, a multiple of 8 */
static Size
ring_bytes(void)
{
	return ((Size) audit_buffer_kb * 1024) & ~((Size) 7);
}

static inline RingEntry *
entry_at(uint64 position)
{
	return (RingEntry *) ((char *) Ring->data + position % ring_bytes());
}

void
pfg_audit_ring_define_settings(void)
{
	DefineCustomIntVariable("profile_guard.audit_buffer_size",
							"Shared memory that holds audit lines until the audit writer appends them to the audit file.",
							"0 makes every backend write its lines to the file itself at the end of each statement.",
							&audit_buffer_kb,
							1024, 0, 1024 * 1024,
							PGC_POSTMASTER,
							GUC_UNIT_KB,
							NULL, NULL, NULL);
}

bool
pfg_audit_ring_enabled(void)
{
	return ring_bytes() > 0;
}

Size
pfg_audit_ring_shmem_size(void)
{
	if (!pfg_audit_ring_enabled())
		return 0;
	return add_size(offsetof(AuditRing, data), ring_bytes());
}

void
pfg_audit_ring_shmem_startup(void)
{
	bool		found;

	if (!pfg_audit_ring_enabled())
		return;
	Ring = ShmemInitStruct("profile_guard audit buffer", pfg_audit_ring_shmem_size(), &found);
	if (!found)
	{
		SpinLockInit(&Ring->mutex);
		Ring->writer_attached = false;
		Ring->wake_sent = false;
		Ring->writer_latch = NULL;
		Ring->reserved = 0;
		Ring->released = 0;
	}
}

bool
pfg_audit_ring_put(const char *data, int len)
{
	Size		size = ring_bytes();
	Size		need = ENTRY_SIZE(len);
	Size		padding;
	uint64		start;
	RingEntry  *entry;
	Latch	   *wake = NULL;

	/* a statement with more lines than a quarter of the ring writes them itself */
	if (Ring == NULL || need > size / 4)
		return false;

	SpinLockAcquire(&Ring->mutex);
	if (!Ring->writer_attached)
	{
		SpinLockRelease(&Ring->mutex);
		return false;
	}
	padding = size - Ring->reserved % size;
	if (padding >= need)
		padding = 0;
	if (Ring->reserved + padding + need - Ring->released > size)
	{
		wake = Ring->writer_latch;
		SpinLockRelease(&Ring->mutex);
		if (wake)
			SetLatch(wake);
		return false;
	}
	if (padding > 0)
	{
		entry = entry_at(Ring->reserved);
		entry->len = padding - sizeof(RingEntry);
		entry->state = ENTRY_PADDING;
	}
	start = Ring->reserved + padding;
	entry = entry_at(start);
	entry->len = len;
	entry->state = ENTRY_COPYING;
	pg_write_barrier();
	Ring->reserved = start + need;
	/* past half full: the writer should not wait for its next round */
	if (!Ring->wake_sent && Ring->reserved - Ring->released > size / 2)
	{
		wake = Ring->writer_latch;
		Ring->wake_sent = true;
	}
	SpinLockRelease(&Ring->mutex);

	memcpy((char *) entry + sizeof(RingEntry), data, len);
	pg_write_barrier();
	entry->state = ENTRY_COMPLETE;
	if (wake)
		SetLatch(wake);
	return true;
}

void
pfg_audit_ring_attach_writer(Latch *latch)
{
	if (Ring == NULL)
		return;
	SpinLockAcquire(&Ring->mutex);
	Ring->writer_latch = latch;
	Ring->writer_attached = true;
	Ring->wake_sent = false;
	SpinLockRelease(&Ring->mutex);
}

void
pfg_audit_ring_detach_writer(void)
{
	if (Ring == NULL)
		return;
	SpinLockAcquire(&Ring->mutex);
	Ring->writer_attached = false;
	Ring->writer_latch = NULL;
	SpinLockRelease(&Ring->mutex);
}

uint64
pfg_audit_ring_take(StringInfo out, bool wait_all)
{
	uint64		position;
	uint64		end;

	if (Ring == NULL)
		return 0;
	SpinLockAcquire(&Ring->mutex);
	position = Ring->released;
	end = Ring->reserved;
	Ring->wake_sent = false;
	SpinLockRelease(&Ring->mutex);

	while (position < end)
	{
		RingEntry  *entry = entry_at(position);
		uint32		state = entry->state;

		if (state == ENTRY_COPYING)
		{
			int			waited;

			if (!wait_all)
				break;
			/* a copy takes microseconds; one that never ends is skipped */
			for (waited = 0; waited < 1000 && entry->state == ENTRY_COPYING; waited++)
				pg_usleep(1000L);
			state = entry->state;
		}
		pg_read_barrier();
		if (state == ENTRY_COMPLETE)
			appendBinaryStringInfo(out, (char *) entry + sizeof(RingEntry), entry->len);
		position += ENTRY_SIZE(entry->len);
	}
	return position;
}

void
pfg_audit_ring_release(uint64 position)
{
	if (Ring == NULL)
		return;
	SpinLockAcquire(&Ring->mutex);
	Ring->released = position;
	SpinLockRelease(&Ring->mutex);
}

void
pfg_audit_ring_drain(void (*write_entry) (const char *data, uint32 len, int fd), int fd)
{
	uint64		position;
	uint64		end;
	Size		size = ring_bytes();

	if (Ring == NULL)
		return;
	/* no lock: a backend that died holding it must not stop us */
	position = Ring->released;
	end = Ring->reserved;
	pg_read_barrier();
	while (position < end)
	{
		RingEntry  *entry = entry_at(position);
		uint32		len = entry->len;

		if (len > size)
			break;				/* not an entry: stop rather than guess */
		if (entry->state == ENTRY_COMPLETE)
			write_entry((const char *) entry + sizeof(RingEntry), len, fd);
		position += ENTRY_SIZE(entry->len);
	}
}
