"""`viseme view`: the character talking in a web page (three.js), written to a file or served on localhost.

`page` builds the self-contained HTML (viewer script, character, animation and sound inside);
`serve` serves it on 127.0.0.1.  The viewer script itself is ``viewer/main.js`` in the repository,
bundled into ``toolkit/view/viewer.bundle.js`` by ``scripts/build_viewer.sh``.
"""
