import re
from pathlib import Path

from aim.cli.runs import runs
from aim.cli.storage_cmds import check, vacuum

DOC = (Path(__file__).resolve().parents[2] / 'docs' / 'system-tracking.md').read_text()


def test_every_runs_command_and_option_is_documented():
    for name, command in runs.commands.items():
        assert re.search(rf'`aim runs[^`]* {name}\b', DOC), f'aim runs {name} is not documented'
        for param in command.params:
            for opt in param.opts:
                if opt.startswith('--') and opt not in ('--repo',):
                    assert opt in DOC, f'{opt} of aim runs {name} is not documented'


def test_storage_check_and_vacuum_are_documented():
    for command in (check, vacuum):
        assert f'aim storage {command.name}' in DOC
        for param in command.params:
            for opt in param.opts:
                if opt.startswith('--'):
                    assert opt in DOC
