"""The HTTP side: the app, the call and QA APIs, pages, accounts and who is asking."""
