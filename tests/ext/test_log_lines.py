from aim.ext.log_lines import LineAssembler, strip_ansi


def feed_all(*chunks: bytes) -> list[str]:
    assembler = LineAssembler()
    lines = []
    for chunk in chunks:
        lines += assembler.feed(chunk)
    return lines + assembler.finish()


def test_lines_split_on_newline_and_tail_is_kept():
    assert feed_all(b'a\nb\n', b'c') == ['a', 'b', 'c']


def test_progress_bar_redraws_collapse_to_the_last_state():
    bar = b''.join(b'\r%3d%%|' % p for p in range(0, 101, 25)) + b'\n'
    assert feed_all(bar) == ['100%|']


def test_crlf_is_a_plain_newline_even_when_split_between_reads():
    assert feed_all(b'done\r', b'\nnext\r\n') == ['done', 'next']


def test_repeated_carriage_returns_keep_the_line():
    assert feed_all(b'keep\r\r\n') == ['keep']


def test_multibyte_characters_split_between_reads():
    data = 'épocas ██ 完成\n'.encode()
    assert feed_all(data[:2], data[2:9], data[9:]) == ['épocas ██ 完成']


def test_ansi_colours_and_cursor_moves_are_removed():
    assert strip_ansi('\x1b[31mred\x1b[0m \x1b[2K\x1b[Adone') == 'red done'
    assert feed_all(b'\x1b[1;32mok\x1b[0m\n') == ['ok']


def test_whitespace_only_tail_is_dropped():
    assert feed_all(b'x\n\r     \r') == ['x']
