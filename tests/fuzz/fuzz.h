/*
 * fuzz.h - what every libFuzzer target of tests/fuzz/ shares: the entry
 * point prototypes, an invariant check that turns a broken promise into a
 * crash libFuzzer records, and a small deterministic generator that turns
 * bytes of the input into chunk sizes (so a crashing split is reproduced
 * from the saved input alone).
 *
 * Included by tests/fuzz/fuzz_*.c only; built by mk/fuzz.mk with clang
 * -fsanitize=fuzzer,address,undefined.
 */
#ifndef ELEMTA_FUZZ_H
#define ELEMTA_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

/* FUZZ_CHECK - abort (a crash for libFuzzer, input saved) when a promise
 * of the module under test does not hold. */
#define FUZZ_CHECK(cond, ...) do {                                        \
	if (!(cond)) {                                                        \
		fprintf(stderr, "fuzz invariant failed at %s:%d: %s: ",       \
		    __FILE__, __LINE__, #cond);                               \
		fprintf(stderr, __VA_ARGS__);                                 \
		fputc('\n', stderr);                                          \
		abort();                                                      \
	}                                                                 \
} while (0)

/* Chunk sizes: xorshift32 seeded from input bytes.  Never 0. */
struct fuzz_rng {
	uint32_t s;
};

/* fuzz_rng_init - seed from up to 4 bytes (a zero seed is made non-zero). */
static inline void
fuzz_rng_init(struct fuzz_rng *r, const uint8_t *seed, size_t n)
{
	r->s = 0x9e3779b9u;
	for (size_t i = 0; i < n && i < 4; i++)
		r->s = (r->s << 8 | r->s >> 24) ^ seed[i];
	if (r->s == 0)
		r->s = 1;
}

/* fuzz_rng_next - the next 32 pseudo-random bits. */
static inline uint32_t
fuzz_rng_next(struct fuzz_rng *r)
{
	r->s ^= r->s << 13;
	r->s ^= r->s >> 17;
	r->s ^= r->s << 5;
	return r->s;
}

/* fuzz_chunk - a chunk length in 1..left, biased to small ones (1-byte
 * chunks find the state carried across calls; big ones the fast paths). */
static inline size_t
fuzz_chunk(struct fuzz_rng *r, size_t left)
{
	uint32_t v = fuzz_rng_next(r);
	size_t n;

	switch (v & 3) {
	case 0:
		n = 1;
		break;
	case 1:
		n = 1 + (v >> 8) % 8;
		break;
	case 2:
		n = 1 + (v >> 8) % 64;
		break;
	default:
		n = 1 + (v >> 8) % 4096;
		break;
	}
	return n < left ? n : left;
}

#endif
