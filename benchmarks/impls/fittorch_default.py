"""fittorch with its default settings (progress output off, as for every peer).

``from fittorch import Trainer`` imports fittorch's training modules here, at import time, as
a user's script does; ``import fittorch`` alone imports no torch (see fittorch/__init__.py).
"""

from fittorch import Trainer

from impls._clock import Clock


def run(w, **opts):
    model = w.model()
    clock = Clock()
    trainer = Trainer(model, loss="cross_entropy", optimizer="adam", lr=w.lr, metrics=["accuracy"],
                      device=w.device, progress=False, **opts)
    trainer.fit((w.X_train, w.y_train), val=(w.X_val, w.y_val), epochs=w.epochs, batch_size=w.batch_size)
    seconds = clock.stop()
    return seconds, trainer.history.last["val_accuracy"]
