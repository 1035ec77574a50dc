"""`make spec SRC=<folder>`: a competition spec drafted from the files a user downloaded, then checked.

A new competition should never need reading podium's source. The folder is looked at as `make data` would
leave it, without unpacking anything (scan: the files, archives, CSVs, image folders, the sample), a spec is
drafted from it with the reason for every value (draft, record; the pixels layout in draft_pixels), and a spec,
drafted or written by hand, is checked against the same view (check): every problem with its fix.
"""

from podium.spec.check import SpecCheck, check_spec
from podium.spec.draft import draft_spec
from podium.spec.record import Draft, Drafted, default_out, write_draft
from podium.spec.scan import SourceFile, SourceView, scan_source

__all__ = ["Draft", "Drafted", "SourceFile", "SourceView", "SpecCheck", "check_spec", "default_out", "draft_spec",
           "scan_source", "write_draft"]
