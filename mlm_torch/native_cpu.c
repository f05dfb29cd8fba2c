/* The native CPU path in one pass over the positions: mlm_torch/cpu.py's stream, bit for bit.
 *
 * cpu.py's docstring defines the stream; Python draws its two seeds (a, b) from the
 * torch.Generator and this file derives every other bit from them with SplitMix64:
 * G_s(c) = mix(s + (c + 1) * GAMMA). mlm_torch/compiled.py builds the file with the C
 * compiler and loads it with ctypes; where that fails, cpu.py's NumPy formulation of the same
 * stream runs instead.
 *
 * Per position i (row-major), with byte(i) = byte i % 8 of G_a(i / 8), least significant
 * first: x_masked[i] = x[i] and y[i] = padding, unless byte(i) < cb (a candidate); then
 * w = G_b(i), k = byte(i) << 16 | (w & 0xFFFF) plus the id's table entry (modulo 2**32:
 * -k_keep where the id may be selected, 2**30 where not), and read as int32
 *     s < sel       selected:  y[i] = x[i]
 *     (uint32) s < sel          [MASK]
 *     s < rnd       a random id: (w >> 16) % n_random, moved past the excluded ids
 * with sel = k_select - k_keep and rnd = k_random - k_keep, as in cpu.py.
 */
#include <stdint.h>
#include <string.h>

#include "cpu_passes.h"

/* SplitMix64's (c + 1)-th output from state s (Steele, Lea and Flood 2014; Vigna's constants). */
static inline uint64_t splitmix(uint64_t s, uint64_t c)
{
    uint64_t z = s + (c + 1) * 0x9E3779B97F4A7C15ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* Lists in `at` the offsets of a block's m candidates (high[i] < cb), in order; returns how
 * many. Where cb <= 128 on a little-endian machine, 8 bytes at a time: per byte b,
 * ((b | 0x80) - cb) borrows from no other byte, and its top bit is clear with b's exactly
 * where b < cb; a set bit's position names the byte. Else one store per position. */
static int64_t candidates(const uint8_t *hb, int64_t m, int64_t cb, int32_t *at)
{
    int64_t c = 0, i = 0;
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    if (cb <= 128) {
        const uint64_t ones = 0x0101010101010101ull, tops = 0x8080808080808080ull;
        for (; i + 8 <= m; i += 8) {
            uint64_t bytes;
            memcpy(&bytes, hb + i, 8);
            uint64_t below = ~(((bytes | tops) - (uint64_t)cb * ones) | bytes) & tops;
            while (below) {
                at[c++] = (int32_t)(i + (__builtin_ctzll(below) >> 3));
                below &= below - 1;
            }
        }
    }
#endif
    for (; i < m; i++) {                      /* branch-free: store, then count it or not */
        at[c] = (int32_t)i;
        c += (int64_t)hb[i] < cb;
    }
    return c;
}

/* Positions per block: the block's candidates are listed first (`candidates`), then worked
 * through, so that no branch per position depends on a random byte (on a CPU, a mispredicted
 * branch per position costs more than the position's whole work). */
#define BLOCK 1024

/* params: cb, rnd, sel, mask, padding, n_random, top, n_shift (see the file's comment);
 * seeds: a, b; table[min(max(id, 0), top)] is the id's offset; returns the candidates.
 * x may be x_masked. */
#define MASK(NAME, T)                                                                       \
int64_t NAME(const T *x, T *x_masked, T *y, int64_t n, const uint64_t *seeds,               \
             const uint32_t *table, const int64_t *shift, const int64_t *params)            \
{                                                                                           \
    const int64_t cb = params[0];                                                           \
    const int32_t rnd = (int32_t)params[1], sel = (int32_t)params[2];                       \
    const T mask = (T)params[3], padding = (T)params[4];                                    \
    const uint64_t n_random = (uint64_t)params[5];                                          \
    const int64_t top = params[6], n_shift = params[7];                                     \
    int32_t at[BLOCK];                                                                      \
    uint8_t hb[BLOCK];                                                                      \
    int64_t total = 0;                                                                      \
    for (int64_t b = 0; b < n; b += BLOCK) {                                                \
        const int64_t m = n - b < BLOCK ? n - b : BLOCK;                                    \
        const T *xb = x + b;                                                                \
        T *out = x_masked + b, *label = y + b;                                              \
        COPY_AND_FILL(out, label, xb, m, padding)                                           \
        for (int64_t q = 0; q < (m + 7) / 8; q++) {   /* the block's bytes: b % 8 == 0 */  \
            const uint64_t h = splitmix(seeds[0], (uint64_t)(b / 8 + q));                   \
            for (int e = 0; e < 8; e++)                                                     \
                hb[8 * q + e] = (uint8_t)(h >> (8 * e));                                    \
        }                                                                                   \
        const int64_t c = candidates(hb, m, cb, at);                                        \
        total += c;                                                                         \
        for (int64_t t = 0; t < c; t++) {                                                   \
            const int64_t i = at[t];                                                        \
            const uint64_t w = splitmix(seeds[1], (uint64_t)(b + i));                       \
            const T v = out[i];                                                             \
            const int64_t id = (int64_t)v;                                                  \
            const uint32_t k = (((uint32_t)hb[i] << 16) | (uint32_t)(w & 0xFFFF))           \
                               + table[id < 0 ? 0 : (id > top ? top : id)];                 \
            const int32_t s = (int32_t)k;                                                   \
            label[i] = s < sel ? v : padding;   /* selected */                              \
            out[i] = k < (uint32_t)sel ? mask : v;                                          \
            if (s < rnd)                        /* rare: p r of the positions */            \
                out[i] = (T)past_excluded((int64_t)((w >> 16) % n_random), shift, n_shift); \
        }                                                                                   \
    }                                                                                       \
    return total;                                                                           \
}

MASK(mlm_mask_int64, int64_t)
MASK(mlm_mask_int32, int32_t)
