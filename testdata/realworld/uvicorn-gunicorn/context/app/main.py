# Stand-in (rbuild realworld corpus).
async def app(scope, receive, send):
    pass
