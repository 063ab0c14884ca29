"""The applications that run a trained model without training it, one module each: ``evaluate``
(`fnet evaluate`), ``predict`` (`fnet predict`), ``calibrate`` (`fnet calibrate`), ``embed``
(`fnet embed`); ``task_model`` loads a `fnet finetune` folder for them. Each runs on any device and
under torchrun through :mod:`fnet.harness`; none imports :mod:`fnet.training`."""
