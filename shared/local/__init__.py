"""The local run (`broker serve`): every function at one address, plus a demo OAuth server. Never deployed."""
