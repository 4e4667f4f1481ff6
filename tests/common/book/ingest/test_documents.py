"""Tests for parsing Docusaurus Markdown/MDX into documents and sections."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from common.book.ingest.documents import (
    DocumentError,
    heading_anchor,
    parse_document,
    parse_markdown,
)

LESSON = """\
---
title: Installing the Toolkit
description: How to set up the robot toolkit
sidebar_position: 3
tags: [setup, ros2]
---
import Tabs from '@theme/Tabs';
import TabItem from '@theme/TabItem';

Some words before any heading.

## Install

<Tabs>
<TabItem value="linux" label="Linux">

```bash
# install the toolkit
sudo apt install robot-toolkit
## not a heading either
```

</TabItem>
</Tabs>

:::note Check your version
Run `toolkit --version` after installing.
:::

### Verify `toolkit` & friends

| Command | Purpose |
| --- | --- |
| `toolkit doctor` | checks the install |

## Install

A second section with the same heading.

## Custom anchor {#my-anchor}

Explicit ids win.
"""


def test_front_matter_fields() -> None:
    doc = parse_markdown(LESSON, "setup/install.md")
    assert doc.title == "Installing the Toolkit"
    assert doc.description == "How to set up the robot toolkit"
    assert doc.sidebar_position == 3.0
    assert doc.tags == ("setup", "ros2")
    assert doc.slug is None and doc.doc_id is None
    assert doc.url == "/setup/install"
    assert doc.content_hash == hashlib.sha256(LESSON.encode("utf-8")).hexdigest()


def test_tags_as_comma_string_and_objects() -> None:
    assert parse_markdown("---\ntags: a, b ,a\n---\ntext", "x.md").tags == ("a", "b")
    text = "---\ntags:\n  - label: Robots\n    permalink: /r\n  - sim\n---\ntext"
    assert parse_markdown(text, "x.md").tags == ("Robots", "sim")


def test_sections_headings_paths_and_lines() -> None:
    doc = parse_markdown(LESSON, "setup/install.md")
    paths = [s.heading_path for s in doc.sections]
    title = "Installing the Toolkit"
    assert paths == [
        (title,),
        (title, "Install"),
        (title, "Install", "Verify toolkit & friends"),
        (title, "Install"),
        (title, "Custom anchor"),
    ]
    assert [s.anchor for s in doc.sections] == [
        "",
        "install",
        "verify-toolkit--friends",
        "install-1",
        "my-anchor",
    ]
    lines = LESSON.split("\n")
    assert lines[doc.sections[0].start_line - 1] == "Some words before any heading."
    for section in doc.sections[1:]:
        assert lines[section.start_line - 1].startswith("#")


def test_code_fence_comments_are_not_headings() -> None:
    doc = parse_markdown(LESSON, "setup/install.md")
    headings = {h for s in doc.sections for h in s.heading_path}
    assert not any("install the toolkit" in h or "not a heading" in h for h in headings)
    install = doc.sections[1].text
    assert "```bash\n# install the toolkit\nsudo apt install robot-toolkit\n" in install
    assert "## not a heading either\n```" in install


def test_mdx_clean_up_keeps_inner_text() -> None:
    doc = parse_markdown(LESSON, "setup/install.md")
    everything = "\n".join(s.text for s in doc.sections)
    assert "import Tabs" not in everything
    assert "<Tabs>" not in everything and "TabItem" not in everything
    assert ":::" not in everything
    install, verify = doc.sections[1].text, doc.sections[2].text
    assert "Check your version\nRun `toolkit --version` after installing." in install
    assert "| Command | Purpose |\n| --- | --- |\n| `toolkit doctor` |" in verify
    assert doc.sections[0].text == "Some words before any heading."


def test_markup_inside_code_and_inline_code_is_kept() -> None:
    text = """\
# Page

Use the `<Tabs>` component.
<details>
<summary>Show the model</summary>

```xml
<robot name="arm">
  <link name="base"/>
</robot>
```

```python
import numpy as np
export_path = "x"
```

</details>
<!-- a hidden
note -->
{/* an MDX comment */}
export const meta = {a: 1};

:::tip[Bracket title]
Body text.
:::
"""
    (section,) = parse_markdown(text, "page.md").sections
    assert "Use the `<Tabs>` component." in section.text
    assert "Show the model" in section.text
    assert "<details>" not in section.text and "<summary>" not in section.text
    assert '<robot name="arm">\n  <link name="base"/>\n</robot>' in section.text
    assert "import numpy as np\nexport_path" in section.text
    assert "hidden" not in section.text and "MDX comment" not in section.text
    assert "export const" not in section.text
    assert "Bracket title\nBody text." in section.text


def test_prose_starting_with_import_is_kept() -> None:
    doc = parse_markdown("import the data from the sensor first.\n", "page.md")
    assert doc.sections[0].text == "import the data from the sensor first."


def test_title_falls_back_to_h1_then_stem() -> None:
    doc = parse_markdown("# Robot Arms\n\nIntro.\n\n## Joints\n\nSix.\n", "03-robot-arms.md")
    assert doc.title == "Robot Arms"
    assert [s.heading_path for s in doc.sections] == [
        ("Robot Arms",),
        ("Robot Arms", "Joints"),
    ]
    assert parse_markdown("Just text.\n", "03-robot-arms.md").title == "robot-arms"


def test_h1_different_from_title_is_in_the_path() -> None:
    text = "---\ntitle: Short\n---\n# Long Heading\n\n## Part\n\nBody.\n"
    (section,) = parse_markdown(text, "x.md").sections
    assert section.heading_path == ("Short", "Long Heading", "Part")


def test_setext_headings_and_crlf() -> None:
    text = "Intro line\n\nPart One\n========\n\nBody one.\n\nSub\n---\n\nBody.\n"
    text = text.replace("\n", "\r\n")
    doc = parse_markdown(text, "x.md")
    assert [s.heading_path for s in doc.sections] == [
        ("Part One",),
        ("Part One",),
        ("Part One", "Sub"),
    ]
    assert [s.start_line for s in doc.sections] == [1, 3, 8]
    assert doc.sections[2].text == "Body."


@pytest.mark.parametrize(
    ("heading", "anchor"),
    [
        ("Hello World", "hello-world"),
        ("Physical AI & Robotics", "physical-ai--robotics"),
        ("What is ROS 2?", "what-is-ros-2"),
        ("1.2 Kinematics (10%)", "12-kinematics-10"),
        ("snake_case-and-dash", "snake_case-and-dash"),
        ("Café Über", "café-über"),
    ],
)
def test_heading_anchor(heading: str, anchor: str) -> None:
    assert heading_anchor(heading) == anchor


@pytest.mark.parametrize(
    ("source", "front_matter", "base_url", "url"),
    [
        ("intro.md", "", "/", "/intro"),
        ("index.md", "", "/", "/"),
        ("guides/index.md", "", "/", "/guides/"),
        ("guides/README.mdx", "", "/", "/guides/"),
        ("guides/Guides.md", "", "/", "/guides/"),
        ("01-basics/02-first-steps.md", "", "/", "/basics/first-steps"),
        ("4.2-locomotion/gait.md", "", "/", "/4.2-locomotion/gait"),
        ("Tools & Tips/Getting Started.md", "", "/", "/Tools%20&%20Tips/Getting%20Started"),
        ("guides/x.md", "slug: /custom/page", "/docs/", "/docs/custom/page"),
        ("guides/index.md", "slug: /", "/docs/", "/docs/"),
        ("guides/x.md", "slug: extra/page", "/", "/guides/extra/page"),
        ("a/b/x.md", "slug: ../up", "/", "/a/up"),
        ("guides/x.md", "id: renamed", "/", "/guides/renamed"),
        ("intro.md", "", "https://book.example.org/docs/", "https://book.example.org/docs/intro"),
    ],
)
def test_urls_follow_docusaurus(source: str, front_matter: str, base_url: str, url: str) -> None:
    text = f"---\n{front_matter}\n---\nBody.\n" if front_matter else "Body.\n"
    assert parse_markdown(text, source, base_url).url == url


def test_parse_document_reads_relative_source(tmp_path: Path) -> None:
    folder = tmp_path / "Tools & Tips"
    folder.mkdir()
    (folder / "02-setup.md").write_bytes(LESSON.encode("utf-8"))
    doc = parse_document(folder / "02-setup.md", tmp_path, "/docs/")
    assert doc.source == "Tools & Tips/02-setup.md"
    assert doc.url == "/docs/Tools%20&%20Tips/setup"
    assert doc.content_hash == hashlib.sha256(LESSON.encode("utf-8")).hexdigest()


def test_empty_after_clean_up_has_no_sections() -> None:
    text = "---\ntitle: Placeholder\n---\nimport X from './x';\n\n<!-- nothing yet -->\n"
    doc = parse_markdown(text, "todo.md")
    assert doc.title == "Placeholder" and doc.sections == ()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("---\ntitle: [unclosed\n---\nBody\n", "invalid front matter YAML at line 2"),
        ("---\ntitle: Never closed\nBody\n", "not closed"),
        ("---\n- a list\n---\nBody\n", "not a YAML mapping"),
        ("x" * 200 + "\n", "line 1 is over 100 characters"),
    ],
)
def test_broken_text_raises_document_error(text: str, message: str) -> None:
    with pytest.raises(DocumentError, match=message) as info:
        parse_markdown(text, "bad.md", max_line_chars=100)
    assert info.value.source == "bad.md"


def test_invalid_utf8_and_size_cap(tmp_path: Path) -> None:
    bad = tmp_path / "latin1.md"
    bad.write_bytes("# Caf\xe9\n".encode("latin-1"))
    with pytest.raises(DocumentError, match="not valid UTF-8") as info:
        parse_document(bad, tmp_path)
    assert info.value.source == "latin1.md"
    big = tmp_path / "big.md"
    big.write_text("word " * 100, encoding="utf-8")
    with pytest.raises(DocumentError, match="over the 100-byte cap"):
        parse_document(big, tmp_path, max_bytes=100)
    with pytest.raises(DocumentError, match="is not under"):
        parse_document(big, tmp_path / "elsewhere")
    with pytest.raises(DocumentError, match="cannot read file"):
        parse_document(tmp_path / "missing.md", tmp_path)
