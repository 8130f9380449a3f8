# Stand-in (rbuild realworld corpus).
bind = '0.0.0.0:80'
