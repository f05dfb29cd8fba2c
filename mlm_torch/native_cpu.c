/* The native CPU path's work on one slice, in one pass over its positions.
 *
 * The stream is mlm_torch/cpu.py's, bit for bit (its docstring says what a generator seed
 * pins); Python draws the random words with the torch.Generator, this file only reads them.
 * mlm_torch/compiled.py builds it with the C compiler and loads it with ctypes; where that
 * fails, cpu.py's NumPy formulation of the same stream runs instead.
 *
 * Per position i of a slice, with `high[i]` its random byte:
 *   x_masked[i] = x[i] and y[i] = padding, unless the byte makes it a candidate
 *   (high[i] < cb): then the next word w of the slice's words completes
 *   k = high[i] << 16 | (w & 0xFFFF), the id's table entry is added (modulo 2**32:
 *   -k_keep where the id may be selected, 2**30 where not), and read as int32
 *     s < sel       selected:  y[i] = x[i]
 *     (uint32) s < sel          [MASK]
 *     s < rnd       a random id: (w >> 16) % n_random, moved past the excluded ids
 *   with sel = k_select - k_keep and rnd = k_random - k_keep, as in cpu.py.
 */
#include <stdint.h>
#include <string.h>

/* How many of n positions are candidates: high[i] < cb (every one when cb >= 256); counted
 * 64 Ki at a time in 32 bits, which the compiler vectorises. */
int64_t mlm_count_candidates(const uint8_t *high, int64_t n, int64_t cb)
{
    if (cb >= 256)
        return n;
    const uint8_t bound = (uint8_t)(cb < 0 ? 0 : cb);
    int64_t count = 0;
    for (int64_t i = 0; i < n;) {
        const int64_t end = n - i < 65536 ? n : i + 65536;
        uint32_t part = 0;
        for (; i < end; i++)
            part += high[i] < bound;
        count += part;
    }
    return count;
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

/* The t-th id not excluded: t plus the number of shift[] entries <= t (shift ascending). */
static int64_t past_excluded(int64_t t, const int64_t *shift, int64_t n_shift)
{
    int64_t lo = 0, hi = n_shift;
    while (lo < hi) {
        int64_t mid = lo + (hi - lo) / 2;
        if (shift[mid] <= t)
            lo = mid + 1;
        else
            hi = mid;
    }
    return t + lo;
}

/* Positions per block: the block's candidates are listed first (`candidates`), then worked
 * through, so that no branch per position depends on a random byte (on a CPU, a mispredicted
 * branch per position costs more than the position's whole work). */
#define BLOCK 1024

/* params: cb, rnd, sel, mask, padding, n_random, top, n_shift (see the file's comment);
 * table[min(max(id, 0), top)] is the id's offset; returns the words read. x may be x_masked. */
#define MASK_SLICE(NAME, T)                                                                 \
int64_t NAME(const T *x, T *x_masked, T *y, int64_t n, const uint8_t *high,                 \
             const uint64_t *words, const uint32_t *table, const int64_t *shift,            \
             const int64_t *params)                                                         \
{                                                                                           \
    const int64_t cb = params[0];                                                           \
    const int32_t rnd = (int32_t)params[1], sel = (int32_t)params[2];                       \
    const T mask = (T)params[3], padding = (T)params[4];                                    \
    const uint64_t n_random = (uint64_t)params[5];                                          \
    const int64_t top = params[6], n_shift = params[7];                                     \
    int32_t at[BLOCK];                                                                      \
    int64_t j = 0;                                                                          \
    for (int64_t b = 0; b < n; b += BLOCK) {                                                \
        const int64_t m = n - b < BLOCK ? n - b : BLOCK;                                    \
        const T *xb = x + b;                                                                \
        T *out = x_masked + b, *label = y + b;                                              \
        const uint8_t *hb = high + b;                                                       \
        for (int64_t i = 0; i < m; i++) {       /* copy and fill: vectorised */             \
            out[i] = xb[i];                                                                 \
            label[i] = padding;                                                             \
        }                                                                                   \
        const int64_t c = candidates(hb, m, cb, at);                                        \
        for (int64_t t = 0; t < c; t++) {                                                   \
            const int64_t i = at[t];                                                        \
            const uint64_t w = words[j++];                                                  \
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
    return j;                                                                               \
}

MASK_SLICE(mlm_mask_slice_int64, int64_t)
MASK_SLICE(mlm_mask_slice_int32, int32_t)
