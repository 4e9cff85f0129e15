"""Many lines at once: a studio's dialogue table or a folder of recordings, resumable, on one machine or a cluster.

    manifest.py  the lines to do: a CSV/TSV table (forgiving column names) or a folder of audio
                 files with transcripts beside them; every check before any work
    ledger.py    what is done already: a content hash of each line (audio, text, options, toolkit
                 version) and its outputs, so a re-run skips unchanged lines and redoes changed ones
    work.py      one line, in a worker: the pipeline, the outputs (atomic), QA warnings, a report row
    run.py       the runner: a local process pool whose workers load the models once, or a Dask cluster
    report.py    the per-line QA report (report.csv and report.json), worst first

`viseme batch MANIFEST -o OUTDIR` (`toolkit.cli`) calls `run.run_batch`.
"""
