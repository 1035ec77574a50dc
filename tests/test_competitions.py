import pytest

from podium.data.competitions import builtin_slugs, load_competition
from podium.errors import PodiumError


def test_builtin_specs_load():
    assert {"demo", "cifar10", "journey-springfield", "sf-dl-car-classification"} <= set(builtin_slugs())
    for slug in builtin_slugs():
        assert load_competition(slug).slug == slug
    cars = load_competition("sf-dl-car-classification")
    assert cars.layout == "csv" and cars.labels_csv == "train.csv" and cars.submission_id == "filename"
    airbus = load_competition("airbus-ship-detection")
    assert (airbus.task, airbus.labels_csv, airbus.rle_column) == ("segmentation", "train_ship_segmentations_v2.csv",
                                                                   "EncodedPixels")
    assert (airbus.submission_id_column, airbus.submission_label_column) == ("ImageId", "EncodedPixels")


def test_unknown_competition_and_unknown_field(tmp_path):
    with pytest.raises(PodiumError, match="Unknown competition 'nope'"):
        load_competition("nope")
    spec = tmp_path / "x.yaml"
    spec.write_text("slug: x\nlabel_colum: y\n")
    with pytest.raises(PodiumError, match="did you mean 'label_column'"):
        load_competition(str(spec))


def test_a_spec_names_a_known_task_and_keeps_masks_boxes_and_label_sets_in_a_csv(tmp_path):
    spec = tmp_path / "x.yaml"
    spec.write_text("slug: x\ntask: keypoints\n")
    with pytest.raises(PodiumError, match="Unknown task 'keypoints'") as caught:
        load_competition(str(spec))
    assert "multilabel" in str(caught.value)
    spec.write_text("slug: x\ntask: segmentation\nlayout: folder\n")
    with pytest.raises(PodiumError, match="task segmentation without a labels CSV"):
        load_competition(str(spec))
