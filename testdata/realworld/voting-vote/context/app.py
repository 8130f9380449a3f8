# Stand-in (rbuild realworld corpus) for the voting app.
from flask import Flask
app = Flask(__name__)

@app.route('/')
def index():
    return 'vote'
