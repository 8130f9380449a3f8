# Stand-in (rbuild realworld corpus).
import requests
