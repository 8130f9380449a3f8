# Stand-in (rbuild realworld corpus).
from flask import Flask
app = Flask(__name__)
