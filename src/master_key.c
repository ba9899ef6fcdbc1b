/*-------------------------------------------------------------------------
 *
 * master_key.c
 *	  Owns the master key: its settings, loading it (and the previous one,
 *	  during a rotation) into backend memory, its fingerprint, the report of
 *	  a data key wrapped by another master key, and the secrets other parts
 *	  derive from it.
 *
 * The master key is 256 bits, 64 hexadecimal digits read from
 * profile_guard.master_key_file or from the standard output of
 * profile_guard.master_key_command, loaded on first use in each backend and
 * never written anywhere.  Its fingerprint is the first 8 bytes of
 * SHA-256(key), in hex; it is stored next to every wrapped data key
 * (data_key.c) so that a wrong master key is reported as such instead of
 * producing garbage.  During a rotation (key_rotation.c)
 * profile_guard.previous_master_key_file names the old key.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <sys/stat.h>
#include <unistd.h>

#include "storage/fd.h"
#include "utils/guc.h"
#include "utils/memutils.h"

#include "master_key.h"

#define KEY_HEX_LEN		(PFG_KEY_LEN * 2)
#define KEY_TEXT_MAX		256 /* longest key file/command output we read */

/* settings */
static char *master_key_file = NULL;
static char *master_key_command = NULL;
static char *previous_master_key_file = NULL;

/* backend-local state */
static PfgMasterKey current_master;
static PfgMasterKey previous_master;


/*
 * Settings.  Key sources are fixed at server start, and hidden from
 * non-superusers.
 */
void
pfg_master_key_define_settings(void)
{
	DefineCustomStringVariable("profile_guard.master_key_file",
							   "File holding the 256-bit master key as 64 hexadecimal digits.",
							   "The master key wraps the per-subject data keys that encrypt sensitive tags.",
							   &master_key_file,
							   "",
							   PGC_POSTMASTER,
							   GUC_SUPERUSER_ONLY,
							   NULL, NULL, NULL);

	DefineCustomStringVariable("profile_guard.master_key_command",
							   "Shell command whose output is the 256-bit master key as 64 hexadecimal digits.",
							   "Used instead of profile_guard.master_key_file.",
							   &master_key_command,
							   "",
							   PGC_POSTMASTER,
							   GUC_SUPERUSER_ONLY,
							   NULL, NULL, NULL);

	DefineCustomStringVariable("profile_guard.previous_master_key_file",
							   "File holding the previous master key, during a master key rotation.",
							   "profile_guard.rotate_master_key() re-wraps data keys from this key to the current one.",
							   &previous_master_key_file,
							   "",
							   PGC_POSTMASTER,
							   GUC_SUPERUSER_ONLY,
							   NULL, NULL, NULL);
}

static int
hex_digit_value(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/*
 * Parse 64 hex digits, optionally followed by white space (a newline).
 * Returns false, leaving key wiped, when the text is anything else.
 */
static bool
parse_hex_key(const char *text, size_t len, uint8 *key)
{
	size_t		i;

	while (len > 0 && (text[len - 1] == '\n' || text[len - 1] == '\r' ||
					   text[len - 1] == ' ' || text[len - 1] == '\t'))
		len--;
	if (len != KEY_HEX_LEN)
		return false;

	for (i = 0; i < PFG_KEY_LEN; i++)
	{
		int			hi = hex_digit_value(text[2 * i]);
		int			lo = hex_digit_value(text[2 * i + 1]);

		if (hi < 0 || lo < 0)
		{
			explicit_bzero(key, PFG_KEY_LEN);
			return false;
		}
		key[i] = (uint8) ((hi << 4) | lo);
	}
	return true;
}

/*
 * The key file is refused unless only the server (or root) can change it
 * and nobody else can read it, as PostgreSQL refuses an SSL key file: owned
 * by the server's user, mode 0600 or less; or owned by root, 0640 or less.
 * A key file others may write lets them put in a key of their own, under
 * which new data keys would be wrapped.
 */
static void
check_key_file_access(FILE *f, const char *path, const char *setting)
{
	struct stat st;

	if (fstat(fileno(f), &st) != 0)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not stat master key file \"%s\": %m", path)));
	if (!S_ISREG(st.st_mode))
		ereport(ERROR,
				(errcode(ERRCODE_CONFIG_FILE_ERROR),
				 errmsg("master key file \"%s\" is not a regular file", path),
				 errhint("Check the setting %s.", setting)));
	if (st.st_uid != geteuid() && st.st_uid != 0)
		ereport(ERROR,
				(errcode(ERRCODE_CONFIG_FILE_ERROR),
				 errmsg("master key file \"%s\" must be owned by the database user or root", path),
				 errhint("Check the setting %s.", setting)));
	if ((st.st_uid == geteuid() && (st.st_mode & (S_IRWXG | S_IRWXO)) != 0) ||
		(st.st_uid == 0 && (st.st_mode & (S_IWGRP | S_IXGRP | S_IRWXO)) != 0))
		ereport(ERROR,
				(errcode(ERRCODE_CONFIG_FILE_ERROR),
				 errmsg("master key file \"%s\" has group or world access", path),
				 errdetail("The file must have permissions u=rw (0600) or less if owned by the database user, or permissions u=rw,g=r (0640) or less if owned by root."),
				 errhint("chmod 600 the file, or check the setting %s.", setting)));
}

static void
read_key_file(const char *path, const char *setting, uint8 *key)
{
	char		buf[KEY_TEXT_MAX];
	FILE	   *f;
	size_t		n;
	bool		read_error;
	bool		ok;

	f = AllocateFile(path, "r");
	if (f == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_CONFIG_FILE_ERROR),
				 errmsg("could not open master key file \"%s\": %m", path),
				 errhint("Check the setting %s.", setting)));
	/* an error closes the file with the transaction (AllocateFile) */
	check_key_file_access(f, path, setting);

	n = fread(buf, 1, sizeof(buf), f);
	read_error = ferror(f) != 0;
	FreeFile(f);

	ok = !read_error && n < sizeof(buf) && parse_hex_key(buf, n, key);
	explicit_bzero(buf, sizeof(buf));

	if (read_error)
		ereport(ERROR,
				(errcode(ERRCODE_CONFIG_FILE_ERROR),
				 errmsg("could not read master key file \"%s\"", path),
				 errhint("Check the setting %s.", setting)));
	if (!ok)
		ereport(ERROR,
				(errcode(ERRCODE_CONFIG_FILE_ERROR),
				 errmsg("master key file \"%s\" does not contain a 256-bit key", path),
				 errdetail("The file must contain exactly 64 hexadecimal digits, optionally followed by a newline."),
				 errhint("Check the setting %s.", setting)));
}

static void
run_key_command(const char *command, uint8 *key)
{
	char		buf[KEY_TEXT_MAX];
	FILE	   *f;
	size_t		n;
	int			rc;
	bool		ok;

	f = OpenPipeStream(command, "r");
	if (f == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_CONFIG_FILE_ERROR),
				 errmsg("could not run the master key command: %m"),
				 errhint("Check the setting profile_guard.master_key_command.")));

	n = fread(buf, 1, sizeof(buf), f);
	rc = ClosePipeStream(f);

	ok = n < sizeof(buf) && parse_hex_key(buf, n, key);
	explicit_bzero(buf, sizeof(buf));

	/* too much output kills the command with SIGPIPE: report the output */
	if (rc != 0 && n < sizeof(buf))
	{
		explicit_bzero(key, PFG_KEY_LEN);
		ereport(ERROR,
				(errcode(ERRCODE_CONFIG_FILE_ERROR),
				 errmsg("the master key command failed"),
				 rc == -1 ? errdetail("Could not close the pipe to the command: %m.") :
				 errdetail_internal("%s", wait_result_to_str(rc)),
				 errhint("Check the setting profile_guard.master_key_command.")));
	}
	if (!ok)
		ereport(ERROR,
				(errcode(ERRCODE_CONFIG_FILE_ERROR),
				 errmsg("the master key command did not print a 256-bit key"),
				 errdetail("The command must print exactly 64 hexadecimal digits, optionally followed by a newline."),
				 errhint("Check the setting profile_guard.master_key_command.")));
}

static void
set_master_key(PfgMasterKey *mk, uint8 *key)
{
	uint8		digest[PFG_SHA256_LEN];
	int			i;

	if (!pfg_sha256_of_secret(key, PFG_KEY_LEN, digest))
	{
		explicit_bzero(key, PFG_KEY_LEN);
		elog(ERROR, "could not compute the master key fingerprint: %s", pfg_openssl_error());
	}
	for (i = 0; i < PFG_FINGERPRINT_BYTES; i++)
		snprintf(mk->fingerprint + 2 * i, 3, "%02x", digest[i]);
	explicit_bzero(digest, sizeof(digest));
	memcpy(mk->key, key, PFG_KEY_LEN);
	mk->prepared = pfg_gcm_key_prepare(TopMemoryContext, key);
	explicit_bzero(key, PFG_KEY_LEN);
	mk->loaded = true;
}

/* true when profile_guard.master_key_file or _command is set */
bool
pfg_master_key_configured(void)
{
	return (master_key_file != NULL && master_key_file[0] != '\0') ||
		(master_key_command != NULL && master_key_command[0] != '\0');
}

const PfgMasterKey *
pfg_master_key_current(void)
{
	uint8		key[PFG_KEY_LEN];
	bool		have_file = master_key_file != NULL && master_key_file[0] != '\0';
	bool		have_command = master_key_command != NULL && master_key_command[0] != '\0';

	if (current_master.loaded)
		return &current_master;

	if (!have_file && !have_command)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("no master key is configured"),
				 errdetail("Sensitive tag values are encrypted with keys wrapped by the master key."),
				 errhint("Set profile_guard.master_key_file or profile_guard.master_key_command in postgresql.conf and restart the server.")));
	if (have_file && have_command)
		ereport(ERROR,
				(errcode(ERRCODE_CONFIG_FILE_ERROR),
				 errmsg("both profile_guard.master_key_file and profile_guard.master_key_command are set"),
				 errhint("Set only one of them and restart the server.")));

	if (have_file)
		read_key_file(master_key_file, "profile_guard.master_key_file", key);
	else
		run_key_command(master_key_command, key);
	set_master_key(&current_master, key);
	return &current_master;
}

const PfgMasterKey *
pfg_master_key_previous(void)
{
	uint8		key[PFG_KEY_LEN];

	if (previous_master.loaded)
		return &previous_master;
	if (previous_master_key_file == NULL || previous_master_key_file[0] == '\0')
		return NULL;

	read_key_file(previous_master_key_file, "profile_guard.previous_master_key_file", key);
	set_master_key(&previous_master, key);
	return &previous_master;
}

bool
pfg_master_key_matches(const PfgMasterKey *mk, const char *fingerprint)
{
	return mk != NULL && strlen(fingerprint) == PFG_FINGERPRINT_HEX_LEN &&
		pfg_equal_constant_time(mk->fingerprint, fingerprint, PFG_FINGERPRINT_HEX_LEN);
}

void
pfg_master_key_mismatch(const char *subject, const char *fingerprint,
						const PfgMasterKey *current)
{
	ereport(ERROR,
			(errcode(ERRCODE_CONFIG_FILE_ERROR),
			 errmsg("master key does not match the key that wrapped the data keys"),
			 errdetail("The data key of subject \"%s\" was wrapped by the master key with fingerprint %s; the configured master key has fingerprint %s.",
					   subject, fingerprint, current->fingerprint),
			 errhint("Configure the master key that wrapped the data keys in profile_guard.master_key_file or profile_guard.master_key_command. To rotate keys, name the old key in profile_guard.previous_master_key_file and call profile_guard.rotate_master_key().")));
}

/*
 * A 256-bit secret for another part of the extension, derived from the
 * master key as HMAC-SHA256(master key, label): the erasure log's keyed
 * subject hashes use it.  The caller wipes out.
 */
void
pfg_master_key_derive(const char *label, uint8 *out)
{
	const PfgMasterKey *mk = pfg_master_key_current();

	if (!pfg_hmac_sha256(mk->key, PFG_KEY_LEN, label, strlen(label), out))
		elog(ERROR, "could not derive a key: %s", pfg_openssl_error());
}
