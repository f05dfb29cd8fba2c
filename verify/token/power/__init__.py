"""The token-level gate's checks of what marginal laws cannot show (`docs/statistics.md`,
"Joint laws, seeding and call shapes"):

* `two_sided`: two-sided tests against the exact null moments (too regular fails too);
* `joint`: the category of a selected position against how it was selected, and random-id
  collisions within a call, counted beside `verify.token.counts`;
* `seeding`: the masker seeded once and called many times, and with nearby seeds;
* `call_shapes`: the masker on many call shapes;
* `power_checks`: the checks built from those counts, in the run's one Holm family.
"""
