# Stand-in (rbuild realworld corpus).
export RC_D=1
