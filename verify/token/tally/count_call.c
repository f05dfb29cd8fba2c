/* The token gate's per-position counting of one call, in one pass (verify/token/tally/compiled.py
 * builds and calls it; verify/token/counts.py holds the NumPy formulation it must equal, count
 * for count, and the meaning of every counter).
 *
 * For each position of a call [seq_len, batch] (C order) it decodes the outcome code
 *
 *     0 ineligible   1 eligible, not selected
 *     2, 3, 4  selected, original drawable:      mask, original, other
 *     5, 6, 7  selected, original not drawable:  mask, original, other
 *
 * and adds, in the same pass: the exact invariants' violation counts, the code pairs of
 * neighbouring positions and columns and of the same position in the previous call, the
 * replayed random ids, each column's selection fingerprint, each selected position's moves in
 * the stratum table, and the selected positions' index, input, output, code and whether the
 * output is drawable (what the random-id and joint tables read next, in NumPy).
 */
#include <stdint.h>
#include <string.h>

#define CODES 8

typedef struct {
    /* the call, [seq_len, batch] each, n = seq_len * batch */
    const int64_t *x, *x_after, *out, *y;
    /* what the input alone gives (`Counts.input_terms`): eligible (0/1), the code of a
     * [MASK] at a selected position (2 or 5), the code of an unselected one (0 or 1), and
     * each position's row (times CODES) in the k strata read per position, k arrays [n];
     * the repeat class of each id [n_tokens] */
    const uint8_t *eligible;
    const int32_t *sel_base, *unsel_code;
    const int32_t *const *strata_rows;
    const int64_t *strata_offset;          /* [k]: each stratum's first row, times CODES */
    const int32_t *repeat_class;
    /* the first rows (times CODES) of the position, column, id and repeat-class strata */
    int64_t n_strata, pos_offset, col_offset, id_offset, repeat_offset;
    const uint8_t *drawable;               /* [n_tokens + 2]: id t drawable: drawable[t + 1] */
    int64_t n_tokens;
    /* the previous call's codes and outputs (NULL for none), and its pair kind: 2 the same
     * batch replayed, 3 the next fresh batch */
    const int32_t *prev_code;
    const int64_t *prev_out;
    int64_t prev_kind;
    const int64_t *weights;                /* [seq_len]: the fingerprint's weights */
    int64_t seq_len, batch, padding, mask_token;
    /* written: codes [n]; the selected positions' index, input, output, code and drawable
     * output [n_selected]; the call's moves in the stratum table [rows * CODES] (zeroed
     * here); each column's fingerprint [batch] */
    int32_t *code;
    int64_t *at, *x_sel, *out_sel;
    int32_t *code_sel;
    uint8_t *drawable_sel;
    int64_t *moved, moved_size;
    int64_t *fingerprint;
    /* added to: invariants [5], pairs [4 * CODES * CODES], replayed ids [2] */
    int64_t *invariants, *pairs, *replay_same;
} count_call_t;

/* whether id t is drawable, without a branch: drawable[0] is 0 (ids below the vocabulary) */
static inline int drawable_id(const count_call_t *c, int64_t t)
{
    const uint64_t u = (uint64_t)t;
    return c->drawable[u < (uint64_t)c->n_tokens ? u + 1 : 0];
}

#define COPIES 4   /* pair tables, by column: a run of equal pairs does not wait on itself */

int64_t mlm_count_call(const count_call_t *c)
{
    /* the fields as local restrict pointers: a byte store (drawable_sel) may alias anything,
     * and the compiler would reload every field from the struct after it */
    const int64_t S = c->seq_len, B = c->batch, padding = c->padding, mask = c->mask_token;
    const int64_t *restrict xs = c->x, *restrict x_after = c->x_after, *restrict outs = c->out;
    const int64_t *restrict ys = c->y, *restrict prev_out = c->prev_out;
    const uint8_t *restrict eligibles = c->eligible;
    const int32_t *restrict sel_base = c->sel_base, *restrict unsel_code = c->unsel_code;
    const int32_t *restrict prev_code = c->prev_code;
    int32_t *restrict codes = c->code, *restrict code_sel = c->code_sel;
    int64_t *restrict at = c->at, *restrict x_sel = c->x_sel, *restrict out_sel = c->out_sel;
    int64_t *restrict fingerprint = c->fingerprint;
    uint8_t *restrict drawable_sel = c->drawable_sel;
    const int replay = c->prev_kind == 2;
    int64_t inv[5] = {0, 0, 0, 0, 0}, pairs[COPIES][3][CODES * CODES], both = 0, same = 0;
    int64_t n_sel = 0;
    memset(pairs, 0, sizeof pairs);
    memset(fingerprint, 0, (size_t)B * sizeof(int64_t));
    /* every position, without branches on its (random) outcome */
    for (int64_t s = 0; s < S; s++) {
        const uint64_t w = (uint64_t)c->weights[s];
        for (int64_t b = 0; b < B; b++) {
            const int64_t i = s * B + b;
            const int64_t x = xs[i], out = outs[i], y = ys[i];
            const int labelled = y != padding, eligible = eligibles[i];
            const int is_orig = out == x, is_mask = out == mask;
            const int sel = labelled & eligible, drawable_out = drawable_id(c, out);
            inv[0] += x_after[i] != x;
            inv[1] += labelled & (y != x);
            inv[2] += !labelled & !is_orig;
            inv[3] += labelled & !eligible;
            inv[4] += labelled & !is_mask & !is_orig & !drawable_out;
            /* outcome 0 [MASK], 1 the original, 2 other: (2 - is_orig)(1 - is_mask) */
            const int32_t sel_code = (2 - is_orig) * (1 - is_mask) + sel_base[i];
            const int32_t code = sel ? sel_code : unsel_code[i];
            int64_t (*hist)[CODES * CODES] = pairs[b % COPIES];
            codes[i] = code;
            if (s > 0)
                hist[0][codes[i - B] * CODES + code]++;
            if (b > 0)
                hist[1][codes[i - 1] * CODES + code]++;
            if (prev_code) {
                const int32_t p = prev_code[i];
                const int hit = replay & (p == 4) & (code == 4);
                hist[2][p * CODES + code]++;
                both += hit;
                same += hit & (prev_out[i] == out);
            }
            fingerprint[b] = (int64_t)((uint64_t)fingerprint[b] + (w & -(uint64_t)sel));
            /* the selected positions, listed by writing every position and keeping the
             * selected ones (their count moves on) */
            at[n_sel] = i;
            x_sel[n_sel] = x;
            out_sel[n_sel] = out;
            code_sel[n_sel] = code;
            drawable_sel[n_sel] = (uint8_t)drawable_out;
            n_sel += sel;
        }
    }
    /* a selected position moves its row's count from code 1 to its code, in every stratum */
    memset(c->moved, 0, (size_t)c->moved_size * sizeof(int64_t));
    for (int64_t j = 0, s = 0; j < n_sel; j++) {
        const int64_t i = at[j], code = code_sel[j];
        while (i >= (s + 1) * B)    /* `at` ascends: the row without a division */
            s++;
        c->moved[c->pos_offset + s * CODES + code]++;
        c->moved[c->col_offset + (i - s * B) * CODES + code]++;
        for (int64_t k = 0; k < c->n_strata; k++)
            c->moved[c->strata_offset[k] + c->strata_rows[k][i] + code]++;
        /* ids past the vocabulary count as its last id (special ones: ineligible) */
        const int64_t x = x_sel[j], id = x < 0 ? 0 : x >= c->n_tokens ? c->n_tokens - 1 : x;
        c->moved[c->id_offset + id * CODES + code]++;
        c->moved[c->repeat_offset + c->repeat_class[id] * CODES + code]++;
    }
    for (int k = 0; k < 5; k++)
        c->invariants[k] += inv[k];
    for (int copy = 0; copy < COPIES; copy++)
        for (int kind = 0; kind < 3; kind++)
            for (int k = 0; k < CODES * CODES; k++) {
                const int row = kind < 2 ? kind : (int)c->prev_kind;
                c->pairs[row * CODES * CODES + k] += pairs[copy][kind][k];
            }
    c->replay_same[0] += both;
    c->replay_same[1] += same;
    return n_sel;
}
