"""The pages and ui/ through Streamlit's AppTest."""
