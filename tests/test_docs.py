"""The documentation's examples run, page by page, as a reader would run them.

Every ``.. code-block:: python`` in ``docs/`` is executed: the blocks of one
page run in order in one namespace (``__name__ == "__main__"``, as in a
script), with the repository root as working directory, where the sample
slide is ``data/sample``. The shared frame cache is emptied before each page,
as in a fresh process, so that printed metrics hold. Pages that use the
placeholder DICOMweb URL ``http://localhost:8042/dicom-web`` run against the
session's Orthanc server, to which the sample slide is uploaded first.

``$ dicomslide ...`` lines of ``.. code-block:: console`` blocks are run with
:func:`dicomslide.cli.main` in a temporary folder that links ``data/``; where
the block shows the output, it must match.

Tracebacks of a failing example point at the line of the ``.rst`` file.
"""

from __future__ import annotations

import importlib.util
import re
import shlex
import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest

from dicomslide.cache import get_default_cache

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
SAMPLE = ROOT / "data" / "sample"
PLACEHOLDER_URL = "http://localhost:8042/dicom-web"

#: Languages a code block may declare; only python and console blocks are run.
LANGUAGES = {"python", "console", "text", "none"}

#: Packages that are not dependencies of dicomslide: a page that imports one
#: is skipped where it is not installed (requirements_test.txt installs them).
OPTIONAL_PACKAGES = ("dask", "distributed", "torch", "tifffile")

#: Examples that fail because of a known library bug, by (page, line of the
#: ``code-block`` directive): the exception type and a part of its message (or
#: of a message in its chain of causes). The test expects exactly this failure
#: and goes on with the page's next blocks; once the bug is fixed it fails,
#: asking to remove the entry.
KNOWN_FAILURES: dict[tuple[str, int], tuple[type[BaseException], str]] = {}

_DIRECTIVE = re.compile(r"^(?P<indent>\s*)\.\. (?P<name>code-block|code|sourcecode)::")


@dataclass
class Block:
    """A code block of a documentation page."""

    page: Path
    line: int  # one-based line of the directive
    language: str
    code: str
    first_code_line: int  # one-based line of the code's first line

    @property
    def name(self) -> str:
        return f"{self.page.relative_to(DOCS).as_posix()}:{self.line}"


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def read_blocks(page: Path) -> list[Block]:
    """All code blocks of a reStructuredText page, in order."""
    lines = page.read_text(encoding="utf-8").splitlines()
    blocks = []
    index = 0
    while index < len(lines):
        match = _DIRECTIVE.match(lines[index])
        if match is None:
            index += 1
            continue
        line = index + 1
        language = lines[index][match.end() :].strip()
        indent = len(match.group("indent"))
        index += 1
        while index < len(lines) and re.match(r"^\s+:[\w-]+:", lines[index]):
            index += 1  # directive options
        body: list[tuple[int, str]] = []
        while index < len(lines) and (
            not lines[index].strip() or _indent(lines[index]) > indent
        ):
            body.append((index + 1, lines[index]))
            index += 1
        while body and not body[-1][1].strip():
            body.pop()
        while body and not body[0][1].strip():
            body.pop(0)
        code = textwrap.dedent("\n".join(text for _, text in body))
        first = body[0][0] if body else line
        blocks.append(Block(page, line, language, code, first))
    return blocks


def _messages(error: BaseException | None) -> str:
    """The messages of an exception and of its causes and contexts."""
    messages: list[str] = []
    while error is not None and len(messages) < 20:
        messages.append(str(error))
        error = error.__cause__ or error.__context__
    return "\n".join(messages)


def doc_pages() -> list[Path]:
    return sorted(path for path in DOCS.rglob("*.rst") if "_build" not in path.parts)


def pages_with(language: str) -> list[Path]:
    return [
        page
        for page in doc_pages()
        if any(block.language == language for block in read_blocks(page))
    ]


def _page_id(page: Path) -> str:
    return page.relative_to(DOCS).as_posix()


@pytest.fixture(scope="module")
def docs_server(orthanc) -> str:
    """The session's Orthanc server, holding the sample slide."""
    from tests.orthanc import dicom_files

    orthanc.upload(dicom_files(SAMPLE))
    return orthanc.dicomweb_url


def test_docs_have_runnable_examples():
    pages = doc_pages()
    assert (DOCS / "index.rst") in pages
    blocks = [block for page in pages for block in read_blocks(page)]
    assert sum(block.language == "python" for block in blocks) >= 30
    for block in blocks:
        assert block.language in LANGUAGES, f"{block.name}: say which language"
        assert block.code.strip(), f"{block.name}: empty code block"
    for key in KNOWN_FAILURES:
        page, line = key
        assert any(
            block.name == f"{page}:{line}" and block.language == "python"
            for block in blocks
        ), f"KNOWN_FAILURES names no python block: {key}"


def test_no_unchecked_doctest_blocks():
    # Interactive ">>>" examples in the pages would escape this test.
    for page in doc_pages():
        text = page.read_text(encoding="utf-8")
        assert ">>>" not in text, f"{_page_id(page)}: use a python code block"


@pytest.mark.parametrize("page", pages_with("python"), ids=_page_id)
def test_python_examples(page, request, monkeypatch):
    blocks = [block for block in read_blocks(page) if block.language == "python"]
    for package in OPTIONAL_PACKAGES:
        imports = re.compile(rf"^\s*(import|from) {package}\b", re.MULTILINE)
        if any(imports.search(block.code) for block in blocks) and (
            importlib.util.find_spec(package) is None
        ):
            pytest.skip(f"{package} is not installed")
    needs_server = any(PLACEHOLDER_URL in block.code for block in blocks)
    url = request.getfixturevalue("docs_server") if needs_server else None
    monkeypatch.chdir(ROOT)
    get_default_cache().clear()
    namespace: dict[str, object] = {"__name__": "__main__"}
    expected_failures = {
        line: failure
        for (known_page, line), failure in KNOWN_FAILURES.items()
        if known_page == _page_id(page)
    }
    for block in blocks:
        code = block.code if url is None else block.code.replace(PLACEHOLDER_URL, url)
        # pad so that tracebacks give the line numbers of the .rst file
        source = "\n" * (block.first_code_line - 1) + code
        compiled = compile(source, str(page), "exec")
        if block.line not in expected_failures:
            exec(compiled, namespace)
            continue
        kind, message = expected_failures[block.line]
        try:
            exec(compiled, namespace)
        except kind as error:
            assert message in _messages(error), f"{block.name}: failed otherwise"
        else:
            pytest.fail(
                f"{block.name} runs now: remove it from KNOWN_FAILURES in "
                "tests/test_docs.py"
            )


def console_commands(page: Path) -> list[tuple[str, str, list[str]]]:
    """(where, command, expected output lines) of ``$ dicomslide`` lines."""
    commands = []
    for block in read_blocks(page):
        if block.language != "console":
            continue
        lines = block.code.splitlines()
        for index, line in enumerate(lines):
            if not line.startswith("$ dicomslide "):
                continue
            output = []
            for following in lines[index + 1 :]:
                if following.startswith("$") or not following.strip():
                    break
                output.append(following.rstrip())
            commands.append((block.name, line[2:], output))
    return commands


@pytest.mark.parametrize(
    "page",
    [page for page in pages_with("console") if console_commands(page)],
    ids=_page_id,
)
def test_console_examples(page, request, tmp_path, monkeypatch, capsys):
    from dicomslide.cli import main

    commands = console_commands(page)
    needs_server = any(PLACEHOLDER_URL in command for _, command, _ in commands)
    url = request.getfixturevalue("docs_server") if needs_server else None
    (tmp_path / "data").symlink_to(ROOT / "data", target_is_directory=True)
    monkeypatch.chdir(tmp_path)
    for where, command, expected in commands:
        if url is not None:
            command = command.replace(PLACEHOLDER_URL, url)
        capsys.readouterr()
        code = main(shlex.split(command)[1:])
        captured = capsys.readouterr()
        assert code == 0, f"{where}: {command!r} exited {code}: {captured.err}"
        if expected:
            actual = [line.rstrip() for line in captured.out.splitlines()]
            assert actual == expected, f"{where}: {command!r} printed otherwise"
