"""Domain and AWS code shipped to every Lambda function of the app.

Only what runs in Lambda lives here; provisioning, the local stack and the
admin tooling live under ``scripts/``.
"""
