"""Sheet music: page images and PDFs read into scores, and scores engraved.

    from engine.score.reading import read_score
    reading = read_score("page.png")            # or the file's bytes; the studio's reader
    reading.summary()                           # pages, systems, staves, parts, bars, notes...
    from engine.score.assemble import midi_bytes, musicxml_bytes
    musicxml_bytes(reading.score)               # the score as MusicXML

Modules: `pages` (image/PDF bytes -> grey pages), `staves` (finding, straightening and
cutting out staves), `encoding` (the reader's symbols <-> music21 bars), `reader` (staff images
-> symbols with confidences), `assemble` (staves -> one music21 score, MusicXML, MIDI),
`reading` (the whole file), `engrave` (verovio: scores -> SVG pages and staff positions).
"""
