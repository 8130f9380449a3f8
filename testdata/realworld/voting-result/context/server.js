// Stand-in (rbuild realworld corpus) for the result app.
const express = require('express');
express().get('/', (req, res) => res.send('result')).listen(process.env.PORT || 80);
