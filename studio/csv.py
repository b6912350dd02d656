"""CSV downloads (the wallet's ledger, the audit log, the spend reports), streamed a row
at a time and safe to open in a spreadsheet.

A spreadsheet runs a cell that starts with `=`, `+`, `-`, `@`, a tab or a carriage
return as a formula, and prompts, memos, names and summaries are typed by users (CSV
injection). The choice here: every cell that is text (a `str`, or anything else written
as text: a code, a date) and starts with one of those gets an apostrophe in front, which
spreadsheets show as text and hide; numbers (`int`, `Decimal`) are written as they are,
so an amount such as -0.04 stays a number to add up. Numbers are never user text: the
studio computes them. So amounts go in as Decimal (see `dollars`), never preformatted.
"""

import csv
import itertools
from decimal import Decimal

from django.http import HttpResponse, StreamingHttpResponse

from studio.billing.models import MICROS_PER_DOLLAR

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def dollars(micros):
    """Exact dollars as a number, never float: -58000 → Decimal("-0.058")."""
    return Decimal(micros) / MICROS_PER_DOLLAR


def cell(value):
    """A cell as the spreadsheet will read it: numbers as they are, text defused."""
    if value is None:
        return ""
    if isinstance(value, Decimal):
        return format(value, "f")  # plain notation: 0.000001, never 1E-6
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    text = str(value)
    return "'" + text if text.startswith(FORMULA_START) else text


class _Echo:
    """csv.writer writes into this and gets the line back, for streaming."""

    def write(self, line):
        return line


def csv_download(filename, header, rows):
    """A streamed CSV attachment: the header, then each row (an iterable of cells)."""
    writer = csv.writer(_Echo())
    lines = (writer.writerow([cell(value) for value in row]) for row in itertools.chain([header], rows))
    return StreamingHttpResponse(lines, content_type="text/csv; charset=utf-8",
                                 headers={"Content-Disposition": f'attachment; filename="{filename}"'})


def filter_errors(form):
    """What a CSV link with bad filters gets instead: 400, each error on a line of text."""
    errors = "\n".join(f"{name}: {error}" for name, messages in form.errors.items() for error in messages)
    return HttpResponse(errors, status=400, content_type="text/plain; charset=utf-8")
