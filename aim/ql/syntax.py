"""Query text -> Python AST, with the forgiving parts of the language.

The language is Python expression syntax, with three allowances made on the token stream
(never with regular expressions over the text, so strings and `==`, `<=`, `!=` are safe):

* the legacy prefix ``SELECT <anything> IF <expr>`` keeps only ``<expr>``;
* a single ``=`` outside a call's keyword argument is read as ``==``;
* ``AND``/``OR``/``NOT``/``IN``/``IS`` in capitals are read as the Python keywords.

Non-Python operators (``&&``, ``||``, ``!x``, ``<>``) are refused with a hint saying what
to write instead. Every error carries the position in the text the user wrote.
"""
from __future__ import annotations

import ast
import io
import tokenize
import warnings
from bisect import bisect_right

from aim.ql.errors import QuerySyntaxError, UnsafeQueryError, query_error

MAX_QUERY_LENGTH = 100_000

_UPPER_KEYWORDS = {'AND': 'and', 'OR': 'or', 'NOT': 'not', 'IN': 'in', 'IS': 'is',
                   'And': 'and', 'Or': 'or', 'Not': 'not'}
# Tokens after which `(` opens a call's argument list rather than a parenthesised group.
_CALLABLE_END = {')', ']'}
_NOT_CALLABLE_NAMES = {'and', 'or', 'not', 'in', 'is', 'if', 'else', 'for', 'lambda',
                       'None', 'True', 'False'}


class ParsedQuery:
    """A parsed query: its AST and how to map AST positions back to the user's text.

    `text` is what the user wrote, `python_text` what was parsed (after the allowances
    above), `tree` None for an empty query (which matches everything)."""

    def __init__(self, text: str, python_text: str, tree: ast.Expression | None,
                 anchors_new: list[int], anchors_orig: list[int], line_starts: list[int]):
        self.text = text
        self.python_text = python_text
        self.tree = tree
        self._anchors_new = anchors_new
        self._anchors_orig = anchors_orig
        self._line_starts = line_starts

    def position(self, node: ast.AST) -> int | None:
        """0-based offset in `text` of an AST node (AST offsets are UTF-8 bytes)."""
        lineno = getattr(node, 'lineno', None)
        col = getattr(node, 'col_offset', None)
        if lineno is None or col is None:
            return None
        line_start = self._line_starts[lineno - 1]
        line = self.python_text[line_start:]
        col_chars = len(line.encode('utf-8')[:col].decode('utf-8', errors='ignore'))
        return self.original_offset(line_start + col_chars)

    def original_offset(self, new_offset: int) -> int:
        i = bisect_right(self._anchors_new, new_offset) - 1
        if i < 0:
            return max(0, min(new_offset, len(self.text)))
        pos = self._anchors_orig[i] + (new_offset - self._anchors_new[i])
        return max(0, min(pos, len(self.text)))


def _line_starts(text: str) -> list[int]:
    starts = [0]
    for i, ch in enumerate(text):
        if ch == '\n':
            starts.append(i + 1)
    return starts


def _abs(line_starts: list[int], row: int, col: int) -> int:
    return line_starts[row - 1] + col


def _tokens(text: str, base: int, query: str) -> list[tokenize.TokenInfo]:
    try:
        return list(tokenize.generate_tokens(io.StringIO(text).readline))
    except tokenize.TokenError as e:
        msg = str(e.args[0]) if e.args else str(e)
        if 'string' in msg:
            raise query_error(QuerySyntaxError, 'the query has an unterminated string', query,
                              None, 'Close every quote you open.') from None
        raise query_error(QuerySyntaxError, 'the query has an unclosed bracket', query,
                          None, 'Close every (, [ and { you open.') from None
    except (SyntaxError, IndentationError) as e:
        raise query_error(QuerySyntaxError, f'the query cannot be read: {e.msg}', query,
                          None, None) from None


def _strip_select_prefix(text: str) -> tuple[str, int]:
    """`SELECT loss, acc IF expr` -> (`expr`, offset of expr); any other text unchanged."""
    stripped = text.lstrip()
    if stripped[:6].lower() != 'select' or (len(stripped) > 6 and
                                            (stripped[6].isalnum() or stripped[6] == '_')):
        return text, 0
    try:
        toks = list(tokenize.generate_tokens(io.StringIO(text).readline))
    except (tokenize.TokenError, SyntaxError):
        toks = []
    starts = _line_starts(text)
    for tok in toks[1:]:
        if tok.type == tokenize.NAME and tok.string.lower() == 'if':
            end = _abs(starts, *tok.end)
            return text[end:], end
    # `SELECT loss` with no condition selects everything.
    return '', len(text)


def _parse_plain_python(query: str, wrapped: str, body: str,
                        body_offset: int) -> ParsedQuery | None:
    """The parse of a query that is already a valid Python expression needing no
    allowance (no single `=`, no upper-case keyword); None otherwise. Most queries are;
    they skip the tokenizer, whose first use compiles a large regular expression (several
    milliseconds of every process' first query)."""
    if any(word in body for word in _UPPER_KEYWORDS):
        return None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter('ignore')
            tree = ast.parse(wrapped, mode='eval')
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None  # the full path below says what is wrong
    return ParsedQuery(query, wrapped, tree, [0], [body_offset - 1], _line_starts(wrapped))


def parse_query(query: str | None) -> ParsedQuery:
    """Parse query text into a Python expression AST; raises QuerySyntaxError."""
    if query is None:
        query = ''
    if not isinstance(query, str):
        raise query_error(QuerySyntaxError,
                          f'a query must be a string, not {type(query).__name__}', None, None,
                          "Pass the expression as text, e.g. \"run.hparams.lr > 0.01\".")
    if len(query) > MAX_QUERY_LENGTH:
        raise query_error(UnsafeQueryError,
                          f'the query is {len(query)} characters long; the limit is '
                          f'{MAX_QUERY_LENGTH}', None, None,
                          'Shorten the query, e.g. use `x in [...]` instead of long `or` chains.')
    if '\x00' in query:
        nul = query.index('\x00')
        raise query_error(QuerySyntaxError, 'the query contains a NUL character', query, nul,
                          'Remove the NUL character.')
    body, body_offset = _strip_select_prefix(query)
    if not body.strip():
        return ParsedQuery(query, '', None, [0], [body_offset], [0])

    # Wrapping in parentheses lets a query span lines freely.
    wrapped = '(' + body + '\n)'
    fast = _parse_plain_python(query, wrapped, body, body_offset)
    if fast is not None:
        return fast
    starts = _line_starts(wrapped)
    toks = _tokens(wrapped, body_offset - 1, query)

    def orig(row: int, col: int) -> int:
        return body_offset - 1 + _abs(starts, row, col)

    edits: list[tuple[int, int, str]] = []   # (start, end, replacement) in `wrapped`
    paren_kinds: list[str] = []
    prev: tokenize.TokenInfo | None = None
    prev2: tokenize.TokenInfo | None = None
    significant = [t for t in toks if t.type not in (tokenize.NL, tokenize.NEWLINE,
                                                      tokenize.COMMENT, tokenize.INDENT,
                                                      tokenize.DEDENT, tokenize.ENDMARKER)]
    for i, tok in enumerate(significant):
        s = tok.string
        start = _abs(starts, *tok.start)
        if tok.type == tokenize.ERRORTOKEN:
            if s == '!':
                raise query_error(QuerySyntaxError, "'!' is not an operator in queries", query,
                                  orig(*tok.start), "Write `not x` instead of `!x`, and `!=` "
                                  "for 'not equal'.")
            if s in ('"', "'"):
                raise query_error(QuerySyntaxError, 'the query has an unterminated string',
                                  query, orig(*tok.start), 'Close every quote you open.')
            if s.isspace():
                continue
            raise query_error(QuerySyntaxError, f'unexpected character {s!r}', query,
                              orig(*tok.start), 'A query is a Python expression, e.g. '
                              "run.hparams.lr > 0.01 and metric.name == 'loss'.")
        if tok.type == tokenize.OP:
            nxt = significant[i + 1] if i + 1 < len(significant) else None
            adjacent = nxt.string if nxt is not None and nxt.start == tok.end else ''
            if s == '&' and adjacent == '&':
                raise query_error(QuerySyntaxError, "'&&' is not an operator in queries", query,
                                  orig(*tok.start), 'Write `and` instead of `&&`.')
            if s == '|' and adjacent == '|':
                raise query_error(QuerySyntaxError, "'||' is not an operator in queries", query,
                                  orig(*tok.start), 'Write `or` instead of `||`.')
            if s == '<>' or (s == '<' and adjacent == '>'):
                raise query_error(QuerySyntaxError, "'<>' is not an operator in queries", query,
                                  orig(*tok.start), 'Write `!=` for "not equal".')
            if s in ('(', '[', '{'):
                is_call = s == '(' and prev is not None and (
                    prev.string in _CALLABLE_END or
                    (prev.type == tokenize.NAME and prev.string not in _NOT_CALLABLE_NAMES
                     and prev.string not in _UPPER_KEYWORDS))
                paren_kinds.append('call' if is_call else s)
            elif s in (')', ']', '}'):
                if paren_kinds:
                    paren_kinds.pop()
            elif s == '=':
                is_keyword_arg = (paren_kinds and paren_kinds[-1] == 'call'
                                  and prev is not None and prev.type == tokenize.NAME
                                  and prev2 is not None and prev2.string in ('(', ','))
                if not is_keyword_arg:
                    edits.append((start, start + 1, '=='))
        elif tok.type == tokenize.NAME and s in _UPPER_KEYWORDS:
            if not (prev is not None and prev.string == '.'):
                edits.append((start, start + len(s), _UPPER_KEYWORDS[s]))
        prev2, prev = prev, tok

    # Apply the edits, keeping anchors so that offsets map back to the user's text.
    pieces = []
    anchors_new = [0]
    anchors_orig = [body_offset - 1]
    cursor = 0
    new_len = 0
    for start, end, repl in edits:
        pieces.append(wrapped[cursor:start])
        new_len += start - cursor
        pieces.append(repl)
        new_len += len(repl)
        cursor = end
        anchors_new.append(new_len)
        anchors_orig.append(body_offset - 1 + end)
    pieces.append(wrapped[cursor:])
    python_text = ''.join(pieces)

    parsed = ParsedQuery(query, python_text, None, anchors_new, anchors_orig,
                         _line_starts(python_text))
    try:
        with warnings.catch_warnings():
            # "is with a literal", "invalid escape sequence": not the user's concern here.
            warnings.simplefilter('ignore')
            tree = ast.parse(python_text, mode='eval')
    except SyntaxError as e:
        pos: int | None = None
        if e.lineno is not None and e.offset is not None:
            line_start = parsed._line_starts[min(e.lineno, len(parsed._line_starts)) - 1]
            pos = parsed.original_offset(line_start + max(e.offset - 1, 0))
        raise query_error(QuerySyntaxError, f'invalid query syntax: {e.msg}', query, pos,
                          _syntax_hint(e.msg)) from None
    except (RecursionError, MemoryError):
        raise query_error(UnsafeQueryError, 'the query is nested too deeply', query, None,
                          'Flatten the expression (fewer nested brackets).') from None
    parsed.tree = tree
    return parsed


def _syntax_hint(msg: str) -> str:
    if 'parenthes' in msg or 'bracket' in msg or 'never closed' in msg or 'unmatched' in msg:
        return 'Check that every (, [ and { is closed.'
    if 'nested' in msg:
        return 'Flatten the expression (fewer nested brackets).'
    return ("A query is a Python expression, e.g. run.hparams.lr > 0.01 and "
            "metric.name == 'loss'; combine conditions with and / or / not.")
