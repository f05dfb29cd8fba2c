/* What the two compiled CPU passes (native_cpu.c, exact_cpu.c) share. */
#ifndef MLM_TORCH_CPU_PASSES_H
#define MLM_TORCH_CPU_PASSES_H

#include <stdint.h>

/* The t-th id not excluded: t plus the number of shift[] entries <= t (shift ascending; the
 * `random_exclude` ids minus their ranks, as mlm_torch.cpu.random_ids adds them). */
static int64_t past_excluded(int64_t t, const int64_t *shift, int64_t n_shift)
{
    int64_t lo = 0, hi = n_shift;
    while (lo < hi) {
        const int64_t mid = lo + (hi - lo) / 2;
        if (shift[mid] <= t)
            lo = mid + 1;
        else
            hi = mid;
    }
    return t + lo;
}

/* A block's outputs before its outcomes: x_masked = x and y = padding, m positions (a loop the
 * compiler vectorises; x may be x_masked). */
#define COPY_AND_FILL(out, label, xb, m, padding)                                           \
    for (int64_t i_ = 0; i_ < (m); i_++) {                                                  \
        (out)[i_] = (xb)[i_];                                                               \
        (label)[i_] = (padding);                                                            \
    }

#endif
