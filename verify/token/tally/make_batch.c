/* The token gate's batch on a CPU (verify/token/tally/batches.py builds and calls it, and holds
 * the NumPy formulation it must equal, id for id; verify/token/inputs.py says what the batch
 * is). Every random bit is SplitMix64 addressed by an index: the word of position i (row-major)
 * is G(i), the word of column b is G(seq_len * batch + b), where G(c) = mix(seed + (c + 1) * gamma).
 *
 *   column word: bit 0 full length, bit 1 a text column, bit 2 three segments (else two),
 *                bits 32..63 the length of a column that is not full, times (seq_len + 1) / 2**32
 *   position word: bits 0..15 the Zipf grid point, bits 16..31 below mask_below: [MASK],
 *                bits 32..63 the uniform id, times n_tokens / 2**32
 */
#include <stdint.h>

#define GAMMA 0x9E3779B97F4A7C15ULL

static inline uint64_t splitmix(uint64_t seed, uint64_t index)
{
    uint64_t z = seed + (index + 1) * GAMMA;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

typedef struct {
    uint64_t seed;
    int64_t seq_len, batch, n_tokens, mask_token, padding, has_specials, cls, sep, mask_below;
    const int64_t *id_of;       /* [65536]: the id of each Zipf grid point */
    int64_t *columns;           /* [3, batch] scratch: text, length, segments */
    int64_t *x;                 /* written: [seq_len, batch] */
} batch_t;

void mlm_make_batch(const batch_t *c)
{
    const int64_t S = c->seq_len, B = c->batch;
    int64_t *text = c->columns, *length = c->columns + B, *cut = c->columns + 2 * B;
    for (int64_t b = 0; b < B; b++) {
        const uint64_t w = splitmix(c->seed, (uint64_t)(S * B + b));
        text[b] = (int64_t)((w >> 1) & 1);
        cut[b] = 2 + (int64_t)((w >> 2) & 1);
        length[b] = (w & 1) ? S : (int64_t)(((w >> 32) * (uint64_t)(S + 1)) >> 32);
    }
    for (int64_t s = 0; s < S; s++)
        for (int64_t b = 0; b < B; b++) {
            const int64_t i = s * B + b;
            const uint64_t w = splitmix(c->seed, (uint64_t)i);
            const int64_t uniform = (int64_t)(((w >> 32) * (uint64_t)c->n_tokens) >> 32);
            int64_t x = text[b] ? c->id_of[w & 0xFFFF] : uniform;
            x = (int64_t)((w >> 16) & 0xFFFF) < c->mask_below ? c->mask_token : x;
            c->x[i] = x;
        }
    /* text columns: [CLS] at 0, then segments closed by [SEP] just before length * k / cut,
     * k = 1 .. cut (past position 0, in columns of length 2 or more); then the padding tail */
    for (int64_t b = 0; b < B; b++) {
        if (c->has_specials && text[b]) {
            c->x[b] = c->cls;
            for (int64_t k = 1; k <= cut[b]; k++) {
                const int64_t end = length[b] * k / cut[b];
                if (end > 1 && length[b] >= 2)
                    c->x[(end - 1) * B + b] = c->sep;
            }
        }
        for (int64_t s = length[b]; s < S; s++)
            c->x[s * B + b] = c->padding;
    }
}
