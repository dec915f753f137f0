"""The efforts: how much compute a sweep spends on an experiment.

Every shipped experiment file (``configs/experiments/*.yaml``) defines these, cheapest
first, in its ``efforts:`` section (what each changes there: epochs, training images, k);
this module says what each is for, for the command line's help.  It imports nothing, so
``vaelab --help`` stays cheap.
"""

EFFORTS: dict[str, str] = {
    "smoke": "checks that everything runs (a minute for all; the numbers mean nothing)",
    "demo": "a first look at every model: N_z = 3 and 20 for a few epochs (about 20 min for all on 2 cores)",
    "quick": "real short-budget numbers (about 2 h for all on 2 cores, most of it Burda et al.'s first "
             "40 epochs)",
    "paper": "the study's and Burda et al.'s full protocols (days on 2 cores; use a GPU or --executor ray)",
}
DEFAULT = "quick"
