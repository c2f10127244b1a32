"""Email: `outbound` renders and delivers notices. It knows no policy: what to send, to whom,
is decided in the domain and stored as notices first."""
