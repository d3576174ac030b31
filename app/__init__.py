"""The SignAttention dashboard (`streamlit run app`); pages and their helpers live beside this file."""
