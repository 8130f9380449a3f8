# Stand-in (rbuild realworld corpus).
import jinja2
print(jinja2.__version__)
