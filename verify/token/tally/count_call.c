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
    /* written: per column the selected count, the first and the last selected position
     * (seq_len and -1 where none) */
    int64_t *col_selected, *col_first, *col_last;
    /* added to: invariants [5], pairs [4 * CODES * CODES], replayed ids [2] */
    int64_t *invariants, *pairs, *replay_same;
} count_call_t;

/* whether id t is drawable, without a branch: drawable[0] is 0 (ids below the vocabulary) */
static inline int drawable_in(const uint8_t *drawable, int64_t n_tokens, int64_t t)
{
    const uint64_t u = (uint64_t)t;
    return drawable[u < (uint64_t)n_tokens ? u + 1 : 0];
}

/* an id as the per-id tables count it: ids past the vocabulary as its last id (special ones,
 * ineligible), ids below 0 as id 0 */
static inline int64_t clip_id(int64_t t, int64_t v)
{
    return t < 0 ? 0 : t >= v ? v - 1 : t;
}

static inline int drawable_id(const count_call_t *c, int64_t t)
{
    return drawable_in(c->drawable, c->n_tokens, t);
}

/* Small tables are counted in COPIES copies, by column: a run of increments of one counter
 * (most positions fall in a few cells) would wait on each other's stores, ~5 cycles each */
#define COPIES 4

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
    for (int64_t b = 0; b < B; b++) {
        c->col_selected[b] = 0;
        c->col_first[b] = S;
        c->col_last[b] = -1;
    }
    for (int64_t j = 0, s = 0; j < n_sel; j++) {
        const int64_t i = at[j], code = code_sel[j];
        while (i >= (s + 1) * B)    /* `at` ascends: the row without a division */
            s++;
        const int64_t b = i - s * B;
        c->col_selected[b]++;
        c->col_first[b] = c->col_first[b] < s ? c->col_first[b] : s;
        c->col_last[b] = s;
        c->moved[c->pos_offset + s * CODES + code]++;
        c->moved[c->col_offset + b * CODES + code]++;
        for (int64_t k = 0; k < c->n_strata; k++)
            c->moved[c->strata_offset[k] + c->strata_rows[k][i] + code]++;
        const int64_t id = clip_id(x_sel[j], c->n_tokens);
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

/* What the counts derive from an input alone (`input_terms.derive_input_terms`), for a call
 * [seq_len, batch]: per position whether it is eligible, the code of a [MASK] there and of
 * leaving it unselected, its neighbourhood's and segment's rows (times CODES); per id its
 * ineligible and eligible occurrences; per position and per column the eligible count; the
 * neighbourhood and segment tables a call selecting nothing adds. */
typedef struct {
    const int64_t *x;
    int64_t seq_len, batch;
    const uint8_t *eligible_id;            /* [top + 1]: ids from top on read eligible_id[top] */
    int64_t top;
    const uint8_t *drawable;               /* [n_tokens + 2], as in count_call_t */
    int64_t n_tokens, has_sep, sep, segments;
    uint8_t *eligible;
    int32_t *sel_base, *unsel_code, *nbr, *seg;   /* [n] each (seg: when has_sep) */
    int64_t *by_id, *pos_eligible, *col_eligible, *nbr_table, *seg_table;  /* zeroed here */
} input_terms_t;

void mlm_input_terms(const input_terms_t *c)
{
    const int64_t S = c->seq_len, B = c->batch, v = c->n_tokens, top = c->top;
    const int64_t *restrict xs = c->x;
    uint8_t *restrict eligible = c->eligible;
    int32_t *restrict unsel = c->unsel_code, *restrict sel_base = c->sel_base;
    int32_t *restrict nbr = c->nbr, *restrict seg = c->seg;
    int64_t *restrict by_id = c->by_id, *restrict pos_el = c->pos_eligible;
    int64_t *restrict col_el = c->col_eligible, *restrict nbr_table = c->nbr_table;
    int64_t *restrict seg_table = c->seg_table;
    memset(by_id, 0, (size_t)(2 * v) * sizeof(int64_t));
    memset(pos_el, 0, (size_t)S * sizeof(int64_t));
    memset(col_el, 0, (size_t)B * sizeof(int64_t));
    memset(nbr_table, 0, 4 * CODES * sizeof(int64_t));
    if (c->has_sep)
        memset(seg_table, 0, (size_t)(c->segments * CODES) * sizeof(int64_t));
    for (int64_t s = 0; s < S; s++) {
        int64_t here = 0;
        for (int64_t b = 0; b < B; b++) {
            const int64_t i = s * B + b, x = xs[i];
            /* the table's last entry holds every id from top on; ids below 0 read entry 0 */
            const int e = c->eligible_id[x < 0 ? 0 : x > top ? top : x];
            eligible[i] = (uint8_t)e;
            unsel[i] = e;
            sel_base[i] = 2 + 3 * !drawable_in(c->drawable, v, x);
            by_id[clip_id(x, v) * 2 + e]++;
            here += e;
            col_el[b] += e;
        }
        pos_el[s] = here;
    }
    /* the neighbourhood (an edge of the sequence counts as ineligible) and the segment (the
     * [SEP]s before the position, capped: min(a + 1, cap) of a capped count is the capped
     * count of one more) */
    int64_t nbr_local[COPIES][4 * CODES], seg_local[COPIES][4 * CODES];
    memset(nbr_local, 0, sizeof nbr_local);
    memset(seg_local, 0, sizeof seg_local);
    for (int64_t s = 0; s < S; s++)
        for (int64_t b = 0; b < B; b++) {
            const int64_t i = s * B + b;
            const int left = s > 0 && eligible[i - B], right = s < S - 1 && eligible[i + B];
            nbr[i] = (2 * left + right) * CODES;
            nbr_local[b % COPIES][nbr[i] + unsel[i]]++;
            if (!c->has_sep)
                continue;
            int32_t before = 0;
            if (s > 0) {
                before = seg[i - B] / CODES + (xs[i - B] == c->sep);
                before = before < c->segments - 1 ? before : (int32_t)c->segments - 1;
            }
            seg[i] = before * CODES;
            seg_local[b % COPIES][seg[i] + unsel[i]]++;
        }
    for (int copy = 0; copy < COPIES; copy++)
        for (int k = 0; k < 4 * CODES; k++) {
            nbr_table[k] += nbr_local[copy][k];
            if (c->has_sep && k < c->segments * CODES)
                seg_table[k] += seg_local[copy][k];
        }
}

/* The random-id and joint tables of a call's selected positions (`random_ids.RandomIdCounts`
 * with its per-id histograms, `power.joint.JointCounts` with collisions), from what
 * mlm_count_call listed. */
typedef struct {
    int64_t n_sel;
    const int64_t *at, *x, *out;           /* the selected positions, ascending, [n_sel] */
    const int32_t *code;
    const uint8_t *drawable_out;
    const int32_t *codes;                  /* every position's code [seq_len, batch] */
    const int64_t *col_selected, *col_first, *col_last, *col_eligible;   /* [batch] */
    const int64_t *count_class;            /* [seq_len + 1, seq_len + 1] */
    int64_t seq_len, batch, n_tokens, coarse, pos_buckets, tables;
    int64_t *seen_ids, *seen_originals;    /* [n_tokens] scratch: zero, and left zero */
    /* added to */
    int64_t *other_hist, *orig_hist, *other_by_orig, *other_by_pos, *orig_by_pos;
    int64_t *joint_tables, *collision_sums;
} selected_t;

void mlm_count_selected(const selected_t *c)
{
    const int64_t S = c->seq_len, B = c->batch, v = c->n_tokens, cb = c->coarse, c1 = cb + 1;
    int64_t equal_ids = 0, equal_originals = 0, visible_n = 0;
    for (int64_t j = 0, s = 0; j < c->n_sel; j++) {
        const int64_t i = c->at[j], x = c->x[j], out = c->out[j], code = c->code[j];
        const int drawable_out = c->drawable_out[j];
        while (i >= (s + 1) * B)
            s++;
        const int64_t b = i - s * B;
        /* the random ids: visible ones (drawable outputs of category other), their originals */
        const int other = code == 4 && drawable_out, orig = code <= 4;
        const int visible = (code == 4 || code == 7) && drawable_out;
        c->other_hist[visible ? out : v]++;
        c->orig_hist[orig ? x : v]++;
        const int64_t out_bin = visible ? clip_id(out, v) * cb / v : cb;
        const int64_t x_bin = clip_id(x, v) * cb / v;
        const int64_t other_bin = other ? out_bin : cb, bucket = s * c->pos_buckets / S;
        c->other_by_orig[(other ? x_bin : 0) * c1 + other_bin]++;
        c->other_by_pos[bucket * c1 + other_bin]++;
        c->orig_by_pos[bucket * c1 + (other ? x_bin : cb)]++;
        if (!orig)
            continue;
        /* the joint tables: drawable originals, category 0 mask, 1 original, 2 other */
        const int64_t cat = code - 2;
        if (cat == 2 && drawable_out) {    /* equal pairs: each id meets those seen before */
            const int64_t id = clip_id(out, v), original = clip_id(x, v);
            equal_ids += c->seen_ids[id]++;
            equal_originals += c->seen_originals[original]++;
            visible_n++;
        }
        if (!c->tables)
            continue;
        const int left = s > 0 && c->codes[i - B] >= 2;
        const int right = s < S - 1 && c->codes[i + B] >= 2;
        const int64_t k = c->col_selected[b];
        const int64_t order = k == 1 ? 0 : s == c->col_first[b] ? 1 : s == c->col_last[b] ? 3 : 2;
        const int64_t count = c->count_class[c->col_eligible[b] * (S + 1) + k];
        c->joint_tables[(2 * left + right) * 3 + cat]++;
        c->joint_tables[(4 + order) * 3 + cat]++;
        c->joint_tables[(8 + count) * 3 + cat]++;
    }
    for (int64_t j = 0; j < c->n_sel; j++)    /* the scratch back to zero */
        if (c->code[j] == 4 && c->drawable_out[j]) {
            c->seen_ids[clip_id(c->out[j], v)] = 0;
            c->seen_originals[clip_id(c->x[j], v)] = 0;
        }
    c->collision_sums[0] += equal_ids;
    c->collision_sums[1] += visible_n * (visible_n - 1) / 2 - equal_originals;
    c->collision_sums[2] += equal_originals;
}
