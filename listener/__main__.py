from listener.cli import app

app(prog_name="listener")
