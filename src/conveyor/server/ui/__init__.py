"""The web UI (issue 11): server-rendered pages and fragments over the run store and the
monitor cache, with their script and style served from this package.

`pages` owns the routes (`/ui/...`, `GET /` and the static files); `views` shapes records
into what the templates show (pure); `graph` lays out the run page's job graph (pure);
`templates/` and `static/` are package data. The browser's own script (`static/ui.js`)
handles the API token, the buttons and the log viewer.
"""
