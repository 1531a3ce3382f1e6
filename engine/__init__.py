"""Music Studio's engine: everything the app does, without Streamlit."""
