"""`vigil demo`: the whole platform on one machine, with simulated patients and a stand-in
for the care team's webhook."""
