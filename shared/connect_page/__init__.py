"""The hosted Connect page (GET /connect), the popup's result page, their one stylesheet and scripts, and the JS
SDK served at /connect.js. Served by the `oauth_start` function (the result page by `oauth_callback`)."""
