"""A user's own masker, written against the module description's contract.

Nothing here comes from mlm-verify: this is the kind of code a data pipeline already has. The
test beside it (test_my_masker.py) shows how to gate it in CI with `verify`.
"""

import torch


class MyMasker:
    """BERT masking for `[seq_len, batch]` token tensors."""

    def __init__(self, *, padding_token, mask_token, no_mask_tokens, n_tokens,
                 masking_prob=0.15, randomize_prob=0.1, no_change_prob=0.1):
        self.padding_token, self.mask_token, self.n_tokens = padding_token, mask_token, n_tokens
        self.special = torch.tensor([padding_token, mask_token, *no_mask_tokens])
        self.p, self.r, self.n = masking_prob, randomize_prob, no_change_prob

    def __call__(self, x: torch.Tensor):
        eligible = ~torch.isin(x, self.special.to(x.device))
        selected = eligible & (torch.rand(x.shape, device=x.device) < self.p)
        c = torch.rand(x.shape, device=x.device)  # one draw: exclusive categories
        to_random = selected & (c < self.r)
        to_mask = selected & (c >= self.r + self.n)
        random_ids = torch.randint(0, self.n_tokens, x.shape, device=x.device)
        x_masked = torch.where(to_random, random_ids, torch.where(to_mask, self.mask_token, x))
        y = torch.where(selected, x, self.padding_token)
        return x_masked, y
