/*
 * test/bench/cipher_floor.c
 *	  The cipher alone, as the read path of sensitive cells calls it: N values
 *	  of 16 bytes, each under its own data key (one subject each), decrypted
 *	  in subject order with libsodium's AES-256-GCM (crypto_aead_aes256gcm_
 *	  decrypt_detached, key set-up included), the associated data built per
 *	  value as the envelope's (subject | 0 | tag | 0 | version).  Keys and
 *	  ciphertexts are in memory: no database, no base64, no look-up.
 *	  Prints the nanoseconds a value, the best of three passes.  With a
 *	  second argument "encrypt", times the encryption of the N values instead
 *	  (the write path's side; the IVs are drawn beforehand, one a value).
 *
 *	  crypto.sh builds and runs it for as many values as its read decrypts,
 *	  to print the lowest ratio any read of them can reach against the
 *	  plaintext read of the same run: the plaintext read plus the cipher.
 *
 *	  cc -O2 -o cipher_floor cipher_floor.c -lsodium && ./cipher_floor N [encrypt]
 */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define KEY_LEN		32
#define IV_LEN		12
#define TAG_LEN		16
#define VALUE_LEN	16
#define TAG_NAME	"health.condition"

static double
now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e9 + ts.tv_nsec;
}

/* subject | 0x00 | tag | 0x00 | 0x01; the subject's digits as cheaply as pg_lltoa */
static int
make_aad(long subject, unsigned char *aad)
{
	char		digits[24];
	int			d = 0;
	int			n = 0;

	do
	{
		digits[d++] = (char) ('0' + subject % 10);
		subject /= 10;
	} while (subject > 0);
	while (d > 0)
		aad[n++] = (unsigned char) digits[--d];

	aad[n++] = 0x00;
	memcpy(aad + n, TAG_NAME, sizeof(TAG_NAME) - 1);
	n += sizeof(TAG_NAME) - 1;
	aad[n++] = 0x00;
	aad[n++] = 0x01;
	return n;
}

int
main(int argc, char **argv)
{
	long		n = argc > 1 ? atol(argv[1]) : 0;
	int			encrypt = argc > 2 && strcmp(argv[2], "encrypt") == 0;
	unsigned char *keys;
	unsigned char *ivs;
	unsigned char *tags;
	unsigned char *cts;
	unsigned char aad[64];
	unsigned char value[VALUE_LEN + 1];
	double		best = -1;
	unsigned long checksum = 0;

	if (n <= 0)
	{
		fprintf(stderr, "usage: cipher_floor N [encrypt] (values to decrypt, or to encrypt)\n");
		return 2;
	}
	if (sodium_init() < 0 || !crypto_aead_aes256gcm_is_available())
	{
		fprintf(stderr, "cipher_floor: libsodium's AES-256-GCM is not available on this CPU\n");
		return 1;
	}
	keys = malloc((size_t) n * KEY_LEN);
	ivs = malloc((size_t) n * IV_LEN);
	tags = malloc((size_t) n * TAG_LEN);
	cts = malloc((size_t) n * VALUE_LEN);
	if (!keys || !ivs || !tags || !cts)
	{
		fprintf(stderr, "cipher_floor: out of memory\n");
		return 1;
	}
	randombytes_buf(keys, (size_t) n * KEY_LEN);
	randombytes_buf(ivs, (size_t) n * IV_LEN);
	for (long i = 0; i < n; i++)
	{
		int			aadlen = make_aad(i + 1, aad);

		snprintf((char *) value, sizeof(value), "condition-%06ld", (i + 1) % 1000000);
		crypto_aead_aes256gcm_encrypt_detached(cts + i * VALUE_LEN, tags + i * TAG_LEN, NULL,
											   value, VALUE_LEN, aad, aadlen, NULL,
											   ivs + i * IV_LEN, keys + i * KEY_LEN);
	}

	for (int pass = 0; pass < 3; pass++)
	{
		double		start = now_ns();
		double		elapsed;

		for (long i = 0; i < n; i++)
		{
			int			aadlen = make_aad(i + 1, aad);

			if (encrypt)
			{
				/* the write path's side: each value under its own key and IV */
				crypto_aead_aes256gcm_encrypt_detached(cts + i * VALUE_LEN, tags + i * TAG_LEN, NULL,
													   value, VALUE_LEN, aad, aadlen, NULL,
													   ivs + i * IV_LEN, keys + i * KEY_LEN);
				checksum += cts[i * VALUE_LEN];
			}
			else if (crypto_aead_aes256gcm_decrypt_detached(value, NULL, cts + i * VALUE_LEN, VALUE_LEN,
															tags + i * TAG_LEN, aad, aadlen,
															ivs + i * IV_LEN, keys + i * KEY_LEN) != 0)
			{
				fprintf(stderr, "cipher_floor: value %ld does not authenticate\n", i + 1);
				return 1;
			}
			else
				checksum += value[VALUE_LEN - 1];
		}
		elapsed = now_ns() - start;
		if (best < 0 || elapsed < best)
			best = elapsed;
	}
	printf("%.1f\n", best / n);
	/* the bytes made are used, so no pass can be optimised away */
	if (checksum == 0)
		fprintf(stderr, "cipher_floor: no value %s\n", encrypt ? "encrypted" : "decrypted");
	return 0;
}
