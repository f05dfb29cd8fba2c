/* Exact mode on the CPU in one pass over the positions: mlm_torch/exact.py's draws, bit for bit.
 *
 * Exact mode draws JAX's random numbers (docs/exact-prng.md): position i's bits under a key
 * are the xor of threefry2x32-20's two output words for the counter (0, i). exact.py derives
 * the keys (k_sel, k_cat, randint's k_lo and k_hi) and the integer bounds on the bits; this
 * file hashes, compares and writes, a block of 1024 positions at a time:
 *   x_masked[i] = x[i] and y[i] = padding, unless x[i] is eligible and bits(k_sel, i) <
 *   b_select; then y[i] = x[i], and with c = bits(k_cat, i):
 *     c >= b_random_or_keep        [MASK]
 *     c <  b_random                a random id: randint's arithmetic on bits(k_lo, i) and
 *                                  bits(k_hi, i), moved past the excluded ids
 *     else                         unchanged
 * mlm_torch/compiled.py builds it with native_cpu.c; where that fails, exact.py's NumPy
 * formulation of the same draws runs instead.
 */
#include <stdint.h>

#include "cpu_passes.h"

#define EXACT_BLOCK 1024

static inline uint32_t rotl32(uint32_t v, int r)
{
    return (v << r) | (v >> (32 - r));
}

/* Threefry2x32-20 of the counter (0, c) under key (k0, k1): its two output words. Group g
 * (0..4) is four rounds, then the key schedule (k0, k1, k0 ^ k1 ^ 0x1BD11BDA) is injected:
 * ks[(g + 1) % 3] into word 0, ks[(g + 2) % 3] + g + 1 into word 1. */
static inline void threefry2x32(uint32_t k0, uint32_t k1, uint32_t c, uint32_t *y0,
                                uint32_t *y1)
{
    const uint32_t k2 = k0 ^ k1 ^ 0x1BD11BDAu;
    uint32_t x0 = k0, x1 = c + k1;
#define ROUND(r) x0 += x1; x1 = rotl32(x1, r); x1 ^= x0;
    ROUND(13) ROUND(15) ROUND(26) ROUND(6)   x0 += k1; x1 += k2 + 1u;
    ROUND(17) ROUND(29) ROUND(16) ROUND(24)  x0 += k2; x1 += k0 + 2u;
    ROUND(13) ROUND(15) ROUND(26) ROUND(6)   x0 += k0; x1 += k1 + 3u;
    ROUND(17) ROUND(29) ROUND(16) ROUND(24)  x0 += k1; x1 += k2 + 4u;
    ROUND(13) ROUND(15) ROUND(26) ROUND(6)   x0 += k2; x1 += k0 + 5u;
#undef ROUND
    *y0 = x0;
    *y1 = x1;
}

/* JAX's 32 bits for counter (0, c) under key (k0, k1): the two words xor'ed. */
static inline uint32_t jax_bits(uint32_t k0, uint32_t k1, uint32_t c)
{
    uint32_t y0, y1;
    threefry2x32(k0, k1, c, &y0, &y1);
    return y0 ^ y1;
}

/* Exact mode's keys from a key (k0, k1), as exact.py's `exact_keys`: k_sel, k_cat, k_tok are
 * jax.random.split(key, 3) (key j: both words of the hash of counter j), k_hi and k_lo
 * split(k_tok, 2); out: k_sel, k_cat, k_lo, k_hi, 8 words. */
static void exact_keys(uint32_t k0, uint32_t k1, uint32_t *out)
{
    uint32_t tok0, tok1;
    threefry2x32(k0, k1, 0, &out[0], &out[1]);
    threefry2x32(k0, k1, 1, &out[2], &out[3]);
    threefry2x32(k0, k1, 2, &tok0, &tok1);
    threefry2x32(tok0, tok1, 0, &out[6], &out[7]);
    threefry2x32(tok0, tok1, 1, &out[4], &out[5]);
}

/* JAX's bits under one key for the counters b + i, i < m: a loop the compiler vectorises
 * (4 lanes of SSE2; on x86-64 with GCC and glibc also an AVX2 clone of 8 lanes, chosen when
 * the library loads). */
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__GLIBC__)
__attribute__((target_clones("avx2", "default")))
#endif
static void bits_run(uint32_t *bits, int64_t m, uint32_t b, uint32_t k0, uint32_t k1)
{
    for (uint32_t i = 0; i < (uint32_t)m; i++)
        bits[i] = jax_bits(k0, k1, b + i);
}

/* JAX's bits under one key for the counters b + at[t], t < c (vectorised likewise). */
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__GLIBC__)
__attribute__((target_clones("avx2", "default")))
#endif
static void bits_at(uint32_t *bits, const int32_t *at, int64_t c, uint32_t b, uint32_t k0,
                    uint32_t k1)
{
    for (int64_t t = 0; t < c; t++)
        bits[t] = jax_bits(k0, k1, b + (uint32_t)at[t]);
}

/* keys: k_sel, k_cat, k_lo, k_hi as 8 uint32 words; eligible[min(max(id, 0), top)]: 1 where
 * an id may be selected; params: b_select, b_random, b_random_or_keep (bounds on the bits, up
 * to 2**32), mask, padding, span, multiplier (randint's; 0: k_hi unused), n_shift, top.
 * n <= 2**32 (the counters are uint32); x may be x_masked. Returns the selected. */
#define EXACT(NAME, T)                                                                      \
int64_t NAME(const T *x, T *x_masked, T *y, int64_t n, const uint32_t *keys,                \
             const uint8_t *eligible, const int64_t *shift, const int64_t *params)          \
{                                                                                           \
    const uint64_t b_select = (uint64_t)params[0], b_random = (uint64_t)params[1];          \
    const uint64_t b_random_or_keep = (uint64_t)params[2];                                  \
    const T mask = (T)params[3], padding = (T)params[4];                                    \
    const uint64_t span = (uint64_t)params[5], multiplier = (uint64_t)params[6];            \
    const int64_t n_shift = params[7], top = params[8];                                     \
    uint32_t bits[EXACT_BLOCK];                                                             \
    int32_t at[EXACT_BLOCK];                                                                \
    int64_t total = 0;                                                                      \
    for (int64_t b = 0; b < n; b += EXACT_BLOCK) {                                          \
        const int64_t m = n - b < EXACT_BLOCK ? n - b : EXACT_BLOCK;                        \
        const T *xb = x + b;                                                                \
        T *out = x_masked + b, *label = y + b;                                              \
        COPY_AND_FILL(out, label, xb, m, padding)                                           \
        bits_run(bits, m, (uint32_t)b, keys[0], keys[1]);          /* k_sel's */            \
        int64_t c = 0;                                                                      \
        for (int64_t i = 0; i < m; i++) {       /* the selected, branch-free */             \
            const int64_t id = (int64_t)out[i];                                             \
            at[c] = (int32_t)i;                                                             \
            c += eligible[id < 0 ? 0 : (id > top ? top : id)] & ((uint64_t)bits[i] < b_select); \
        }                                                                                   \
        total += c;                                                                         \
        bits_at(bits, at, c, (uint32_t)b, keys[2], keys[3]);       /* k_cat's */            \
        for (int64_t t = 0; t < c; t++) {                                                   \
            const int64_t i = at[t];                                                        \
            const uint32_t counter = (uint32_t)(b + i);                                     \
            const uint64_t category = bits[t];                                              \
            label[i] = out[i];                                                              \
            if (category >= b_random_or_keep) {                                             \
                out[i] = mask;                                                              \
            } else if (category < b_random) {                                               \
                uint64_t r = jax_bits(keys[4], keys[5], counter) % span;                    \
                if (multiplier)                                                             \
                    r = (r + jax_bits(keys[6], keys[7], counter) % span * multiplier) % span; \
                out[i] = (T)past_excluded((int64_t)r, shift, n_shift);                \
            }                                                                               \
        }                                                                                   \
    }                                                                                       \
    return total;                                                                           \
}

EXACT(mlm_exact_int64, int64_t)
EXACT(mlm_exact_int32, int32_t)

/* A padded batch [batch, seq], row r masked under its own key (row_keys[2 r], row_keys[2 r + 1])
 * as a batch of its own (mlm_torch.streams.mask_rows): the row's keys split here, its counters
 * its column indices (seq <= 2**32). Returns the selected. */
#define EXACT_ROWS(NAME, ONE, T)                                                            \
int64_t NAME(const T *x, T *x_masked, T *y, int64_t batch, int64_t seq,                     \
             const uint32_t *row_keys, const uint8_t *eligible, const int64_t *shift,       \
             const int64_t *params)                                                         \
{                                                                                           \
    uint32_t keys[8];                                                                       \
    int64_t total = 0;                                                                      \
    for (int64_t r = 0; r < batch; r++) {                                                   \
        exact_keys(row_keys[2 * r], row_keys[2 * r + 1], keys);                             \
        total += ONE(x + r * seq, x_masked + r * seq, y + r * seq, seq, keys, eligible,     \
                     shift, params);                                                        \
    }                                                                                       \
    return total;                                                                           \
}

EXACT_ROWS(mlm_exact_rows_int64, mlm_exact_int64, int64_t)
EXACT_ROWS(mlm_exact_rows_int32, mlm_exact_int32, int32_t)
