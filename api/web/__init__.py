"""Vigil in the browser: the clinicians' central station, a patient's detail and daily
report, and the patient's own view.

The pages are static files (HTML, CSS, JavaScript modules, no build step) and hold no
patient data: every number on them comes from the API with the signed-in person's token,
through the same policy and the same audit trail as any other client. The token lives in
the tab's ``sessionStorage`` (from a ``#token=`` link or the sign-in page), never in a
cookie, so no other site can make the browser act with it, and the API's
Content-Security-Policy allows no script but the API's own files.
"""
