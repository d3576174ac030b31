"""SignAttention dashboard: `streamlit run app [-- --artifacts DIR]`.

This entry point puts the repository on the import path, picks the run in the
sidebar, and routes the five analysis pages with `st.navigation`. Each page
is one file beside this one.
"""

import sys
from pathlib import Path

_REPO_ROOT = str(Path(__file__).resolve().parents[1])
if _REPO_ROOT not in sys.path:
    sys.path.insert(0, _REPO_ROOT)

import streamlit as st  # noqa: E402

from app import data  # noqa: E402

PAGES = [
    st.Page("overview.py", title="Run overview", url_path="overview", default=True),
    st.Page("sample.py", title="Sample", url_path="sample"),
    st.Page("alignment.py", title="Alignment across the split",
            url_path="alignment"),
    st.Page("repeated.py", title="Repeated sentences", url_path="repeated"),
    st.Page("concordance.py", title="Gloss concordance",
            url_path="concordance"),
]

st.set_page_config(page_title="SignAttention", layout="wide")
page = st.navigation(PAGES)
data.choose_run()
page.run()
