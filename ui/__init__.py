"""The studio's only Streamlit-aware helpers: model loaders, cached runners, shared widgets."""
