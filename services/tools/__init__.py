"""Tools: code that is not part of the running system — the demo quarter (`demo`) and the
benchmark (`bench`). Only entry points (`services.cli`) and the composition root
(`services.app`, which loads the demo for `jiedu up --demo`) import them.
"""
