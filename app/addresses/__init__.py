"""How domains, hostnames and email addresses are written: pure rules, no storage."""
