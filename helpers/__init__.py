"""What students and lectures import: data, text, demos, plots, widgets and training utilities.

One module per concern (nothing here computes a graded answer; the checks live in ``graders``):

- ``helpers.torch_utils``   seeding (``seed_everything``) and device selection (``get_device``)
- ``helpers.gradcheck``     relative error and centred-difference numerical gradients
- ``helpers.data``          dataset paths, the seq2seq generators (dates, addition) and the images of unit 5
- ``helpers.text``          the Shakespeare corpus, character vocabularies, truncated-BPTT batches
- ``helpers.gradient_flow`` gradient norms through time, spectral norms, the loss cliff, a torch RNN
  baseline and recurrent initialisations (lectures 03-04, a2)
- ``helpers.tasks``         the delayed-recall task and its small recurrent classifiers (lecture 04, a2)
- ``helpers.rnn_demos``     the small models and widgets of lectures 01-02
- ``helpers.attention``     seq2seq training, exact match, attention plots and the explorer (lecture 05, a4)
- ``helpers.scenes``        captioning scenes of coloured shapes, template captions, vocabulary (lecture 06, a5)
- ``helpers.cnn``           the small CNN of unit 5 and its pretrained source checkpoints (lecture 06, a5)
- ``helpers.scene_encoder`` the frozen CNN that turns a scene into a 4x4 grid of features (lecture 06, a5)
- ``helpers.transfer_plots`` the figures, tables and attention-stepping widget logic of lecture 06
- ``helpers.benchmark``     synchronised timing of forward + backward passes (a3, scripts/)
- ``helpers.charlm``        the character LSTM language model of unit 6, its data and training loop (lecture 07, a6)
- ``helpers.search_demo``   the grid / random / Sobol search simulation (lecture 07)
- ``helpers.learning_curves`` the gallery of learning-curve pathologies and its widget (lecture 07)
- ``helpers.workflow_plots`` the figures of lecture 07, drawn from cached results
- ``helpers.widget_state``  JupyterLab's pre-save hook that keeps a lecture's stored widgets (set by `make setup`)
"""
from .data import dataset_path, datasets_dir
from .gradcheck import numerical_gradient, rel_error
from .torch_utils import get_device, seed_everything

__all__ = [
    "dataset_path",
    "datasets_dir",
    "get_device",
    "numerical_gradient",
    "rel_error",
    "seed_everything",
]
