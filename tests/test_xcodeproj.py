"""The hand-written Xcode project is well formed: parsed as an OpenStep plist, not with regexes.

Nothing here builds the app (that needs Xcode on a Mac); it checks what can go wrong in a
hand-written project file: dangling object references, files that are not on disk, a Swift file
left out of the target, the model missing from the Sources phase, the local DigitKit package not
linked, the shared scheme missing, settings Xcode needs.
"""

from __future__ import annotations

import json
import re
from pathlib import Path, PurePosixPath

import pytest

from kerasml.app.contract import CONTRACT, PROJECT, load_contract

openstep = pytest.importorskip("openstep_parser", reason="pip install -e '.[test]' for the plist parser")

APP_DIR = Path(__file__).resolve().parents[1] / "ios_app"
PBXPROJ = APP_DIR / PROJECT / "project.pbxproj"
SCHEME = APP_DIR / PROJECT / "xcshareddata/xcschemes/DigitDemo.xcscheme"
MODEL_IN_APP = load_contract(APP_DIR).model_file
REFERENCE_FIELDS = ("children", "files", "fileRef", "buildPhases", "buildConfigurations",
                    "buildConfigurationList", "mainGroup", "productRefGroup", "targets",
                    "productReference", "dependencies", "packageProductDependencies",
                    "packageReferences", "package", "target", "targetProxy")


@pytest.fixture(scope="module")
def project() -> dict:
    return openstep.OpenStepDecoder.ParseFromString(PBXPROJ.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def objects(project) -> dict:
    return project["objects"]


@pytest.fixture(scope="module")
def target(objects) -> dict:
    targets = [o for o in objects.values() if o["isa"] == "PBXNativeTarget"]
    assert [t["name"] for t in targets] == ["DigitDemo"]
    return targets[0]


@pytest.fixture(scope="module")
def paths(objects) -> dict[str, PurePosixPath]:
    """Each group-relative file reference and group, as a path relative to ios_app/."""
    parent = {child: key for key, o in objects.items() if o["isa"] == "PBXGroup"
              for child in o.get("children", [])}

    def resolve(key: str) -> PurePosixPath:
        node = objects[key]
        assert node.get("sourceTree") in ("<group>", "SOURCE_ROOT"), f"{key}: unexpected sourceTree"
        own = PurePosixPath(node.get("path", ""))
        if node.get("sourceTree") == "SOURCE_ROOT" or key not in parent:
            return own
        return resolve(parent[key]) / own

    return {key: resolve(key) for key, o in objects.items()
            if o["isa"] in ("PBXFileReference", "PBXGroup") and o.get("sourceTree") != "BUILT_PRODUCTS_DIR"}


def _phase(objects, target, isa: str) -> dict:
    phases = [objects[key] for key in target["buildPhases"] if objects[key]["isa"] == isa]
    assert len(phases) == 1, f"the target needs exactly one {isa}"
    return phases[0]


def _phase_files(objects, target, isa: str, paths) -> set[PurePosixPath]:
    return {paths[objects[build_file]["fileRef"]] for build_file in _phase(objects, target, isa)["files"]}


def test_header_and_root_object(project, objects):
    assert PBXPROJ.read_text(encoding="utf-8").startswith("// !$*UTF8*$!")
    assert int(project["objectVersion"]) >= 60          # XCLocalSwiftPackageReference needs Xcode 15
    assert objects[project["rootObject"]]["isa"] == "PBXProject"
    # The parser keeps the last of two objects with the same id: count them in the text too.
    assert PBXPROJ.read_text(encoding="utf-8").count("isa = ") == len(objects)
    assert all(re.fullmatch(r"[0-9A-F]{24}", key) for key in objects), "object ids are 24 hex digits"


def test_every_reference_points_to_an_object(project, objects):
    dangling = []
    for key, node in objects.items():
        for field in REFERENCE_FIELDS:
            value = node.get(field)
            for ref in value if isinstance(value, list) else [value] if value else []:
                if ref not in objects:
                    dangling.append(f"{key}.{field} -> {ref}")
    assert not dangling, dangling


def test_every_referenced_file_exists(objects, paths):
    missing = [str(path) for key, path in paths.items()
               if path != PurePosixPath(MODEL_IN_APP.as_posix()) and not (APP_DIR / path).exists()]
    assert not missing, f"the project references files that are not in ios_app/: {missing}"


def test_model_file_is_present(paths):
    assert PurePosixPath(MODEL_IN_APP.as_posix()) in paths.values()
    if not (APP_DIR / MODEL_IN_APP).is_file():
        pytest.skip(f"ios_app/{MODEL_IN_APP} is not committed yet: run `make demo` then "
                    "`kerasml package models/digits.mlmodel`")


def test_model_is_compiled_in_the_sources_phase(objects, target, paths):
    sources = _phase_files(objects, target, "PBXSourcesBuildPhase", paths)
    assert PurePosixPath(MODEL_IN_APP.as_posix()) in sources      # so Xcode generates its class
    models = [p for p in paths.values() if p.suffix in (".mlmodel", ".mlpackage")]
    assert models == [PurePosixPath(MODEL_IN_APP.as_posix())]
    model_ref = next(o for o in objects.values() if o.get("path") == MODEL_IN_APP.name)
    assert model_ref["lastKnownFileType"] == "file.mlmodel"


def test_every_swift_source_of_the_app_is_in_the_target(objects, target, paths):
    sources = _phase_files(objects, target, "PBXSourcesBuildPhase", paths)
    on_disk = {PurePosixPath(p.relative_to(APP_DIR).as_posix()) for p in (APP_DIR / "DigitDemo").rglob("*.swift")}
    assert on_disk, "no Swift sources found"
    assert on_disk - sources == set(), "Swift files missing from the DigitDemo target"
    assert {p for p in sources if p.suffix == ".swift"} == on_disk, "the target compiles files outside the app"


def test_digitkit_is_a_linked_local_package_not_loose_files(objects, project, target, paths):
    """The app links the DigitKit product of ios_app/DigitKit, so `public` is what the app sees."""
    root = objects[project["rootObject"]]
    references = [objects[key] for key in root.get("packageReferences", [])]
    assert [r["isa"] for r in references] == ["XCLocalSwiftPackageReference"]
    assert (APP_DIR / references[0]["relativePath"] / "Package.swift").is_file()
    package_swift = (APP_DIR / references[0]["relativePath"] / "Package.swift").read_text(encoding="utf-8")
    assert '.library(name: "DigitKit"' in package_swift
    products = [objects[key] for key in target["packageProductDependencies"]]
    assert [(p["isa"], p["productName"]) for p in products] == [("XCSwiftPackageProductDependency", "DigitKit")]
    assert objects[products[0]["package"]] is references[0]
    frameworks = _phase(objects, target, "PBXFrameworksBuildPhase")["files"]
    assert [objects[f].get("productRef") for f in frameworks] == target["packageProductDependencies"]
    assert not any(str(path).startswith("DigitKit") for path in paths.values()), "DigitKit files compiled loose"


def test_app_code_imports_digitkit_where_it_uses_it():
    import re

    public = {m.group(1) for p in (APP_DIR / "DigitKit/Sources/DigitKit").glob("*.swift")
              for m in re.finditer(r"public (?:struct|enum|final class|class) (\w+)", p.read_text(encoding="utf-8"))}
    assert {"Sketch", "GrayImage", "AppContract", "PhotoPreparer", "StrokeTracker"} <= public
    for source in (APP_DIR / "DigitDemo").rglob("*.swift"):
        code = [line for line in source.read_text(encoding="utf-8").splitlines() if not line.lstrip().startswith("//")]
        used = {name for name in public if any(re.search(rf"\b{name}\b", line) for line in code)}
        if used:
            assert "import DigitKit" in code, f"{source.name} uses {sorted(used)} without importing DigitKit"


def test_the_contract_is_bundled_and_matches_the_project(objects, target, paths, project):
    resources = _phase_files(objects, target, "PBXResourcesBuildPhase", paths)
    assert PurePosixPath(CONTRACT) in resources
    contract = load_contract(APP_DIR)
    root = objects[project["rootObject"]]
    for key in objects[root["buildConfigurationList"]]["buildConfigurations"]:
        assert float(objects[key]["buildSettings"]["IPHONEOS_DEPLOYMENT_TARGET"]) == contract.minimum_ios


def test_shared_scheme_builds_and_runs_the_app(target, project):
    """`xcodebuild -scheme DigitDemo` needs a shared scheme that names the app target."""
    import xml.etree.ElementTree as ElementTree

    scheme = ElementTree.parse(SCHEME).getroot()
    blueprints = {(ref.get("BlueprintIdentifier"), ref.get("BlueprintName"), ref.get("ReferencedContainer"))
                  for ref in scheme.iter("BuildableReference")}
    key = next(k for k, o in project["objects"].items() if o is target)
    assert blueprints == {(key, "DigitDemo", "container:DigitDemo.xcodeproj")}
    assert scheme.find("LaunchAction/BuildableProductRunnable") is not None
    root = project["objects"][project["rootObject"]]
    assert int(root["attributes"]["LastUpgradeCheck"]) >= 1600
    assert scheme.get("LastUpgradeVersion") == root["attributes"]["LastUpgradeCheck"]


def test_camera_use_is_explained(objects, target):
    for key in objects[target["buildConfigurationList"]]["buildConfigurations"]:
        assert objects[key]["buildSettings"]["INFOPLIST_KEY_NSCameraUsageDescription"]


def test_asset_catalog_has_app_icon_and_accent_colour(objects, target, paths):
    resources = _phase_files(objects, target, "PBXResourcesBuildPhase", paths)
    catalogs = [p for p in resources if p.suffix == ".xcassets"]
    assert len(catalogs) == 1
    catalog = APP_DIR / catalogs[0]
    json.loads((catalog / "Contents.json").read_text(encoding="utf-8"))
    accent = json.loads((catalog / "AccentColor.colorset/Contents.json").read_text(encoding="utf-8"))
    assert accent["colors"]
    icon = json.loads((catalog / "AppIcon.appiconset/Contents.json").read_text(encoding="utf-8"))
    assert icon["images"]
    for image in icon["images"]:
        if "filename" in image:
            assert (catalog / "AppIcon.appiconset" / image["filename"]).is_file()


def test_build_settings_xcode_accepts(objects, project, target):
    project_object = objects[project["rootObject"]]
    for owner in (project_object, target):
        configurations = objects[owner["buildConfigurationList"]]["buildConfigurations"]
        assert sorted(objects[c]["name"] for c in configurations) == ["Debug", "Release"]
    for key in objects[target["buildConfigurationList"]]["buildConfigurations"]:
        settings = objects[key]["buildSettings"]
        assert settings["GENERATE_INFOPLIST_FILE"] == "YES" or (APP_DIR / settings["INFOPLIST_FILE"]).is_file()
        assert settings["ASSETCATALOG_COMPILER_APPICON_NAME"] == "AppIcon"
        assert settings["ASSETCATALOG_COMPILER_GLOBAL_ACCENT_COLOR_NAME"] == "AccentColor"
        assert settings["PRODUCT_BUNDLE_IDENTIFIER"]
        assert settings["SWIFT_VERSION"] == "6.0", "the Swift 6 language mode: complete data-race checking"
        assert settings["INFOPLIST_KEY_UILaunchScreen_Generation"] == "YES"
    for key in objects[project_object["buildConfigurationList"]]["buildConfigurations"]:
        settings = objects[key]["buildSettings"]
        assert settings["IPHONEOS_DEPLOYMENT_TARGET"] == "16.0" and settings["SDKROOT"] == "iphoneos"
    assert target["productType"] == "com.apple.product-type.application"


# ---------------------------------------------------------------------------------------- Core AI
# The app carries its optional Core AI model (app-contract.json `core_ai`) in a folder reference that
# Xcode copies as is: an .aimodel that is a member of a target is compiled by Xcode 27, which then needs
# the Metal Toolchain (Apple: "Integrating on-device AI models in your app with Core AI"), and Xcode 16
# does not know the type. At run time Core AI specialises the copied .aimodel on the device (ios_app/README.md).

def _core_ai() -> dict:
    return json.loads((APP_DIR / CONTRACT).read_text(encoding="utf-8"))["core_ai"]


def test_the_core_ai_model_travels_in_a_folder_reference_copied_as_is(objects, target, paths):
    model = PurePosixPath(_core_ai()["file"])
    assert model.suffix == ".aimodel" and model.stem == MODEL_IN_APP.stem, "one name for both models"
    folder = model.parent
    references = [key for key, path in paths.items() if path == folder]
    assert len(references) == 1, f"the project needs one reference to {folder}"
    reference = objects[references[0]]
    assert reference["isa"] == "PBXFileReference" and reference["lastKnownFileType"] == "folder", \
        "a folder reference (copied whole, its contents never compiled), not a group"
    assert folder in _phase_files(objects, target, "PBXResourcesBuildPhase", paths)
    assert folder not in _phase_files(objects, target, "PBXSourcesBuildPhase", paths)
    assert (APP_DIR / folder).is_dir() and any((APP_DIR / folder).iterdir()), \
        f"ios_app/{folder} must exist (with its README) so that Xcode finds the folder without a model"


def test_no_core_ai_model_is_a_member_of_the_target(objects, paths):
    """An .aimodel (or .aimodelc) file reference would be compiled: Xcode 16 fails on the unknown type
    and Xcode 27 without the Metal Toolchain "with a missing Metal compiler error"."""
    members = [str(path) for path in paths.values() if path.suffix in (".aimodel", ".aimodelc")]
    assert not members, f"Core AI models must stay inside the folder reference, not in the project: {members}"
    types = {o.get("lastKnownFileType", "") + o.get("explicitFileType", "") for o in objects.values()
             if o["isa"] == "PBXFileReference"}
    assert not any("aimodel" in t for t in types)


def test_every_core_ai_use_is_guarded_for_xcode_16():
    """Xcode 16's SDK has no CoreAI module and iOS before 27 no Core AI: each file that imports it
    sits inside `#if canImport(CoreAI)` and each declaration that uses it is `@available(iOS 27, *)`."""
    import re

    core_ai_names = re.compile(r"\b(import CoreAI|AIModel|AIModelAsset|InferenceFunction|NDArray|CoreAIDigitClassifier)\b")
    users = []
    for source in (APP_DIR / "DigitDemo").rglob("*.swift"):
        text = source.read_text(encoding="utf-8")
        code = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("//"))
        if not core_ai_names.search(code):
            continue
        users.append(source.name)
        guarded = []
        for line in code.splitlines():
            stripped = line.strip()
            if stripped.startswith("#if"):
                guarded.append("canImport(CoreAI)" in stripped)
            elif stripped.startswith("#endif"):
                guarded.pop()
            elif core_ai_names.search(stripped):
                assert any(guarded), f"{source.name}: `{stripped}` is outside #if canImport(CoreAI)"
        assert "import CoreAI" not in code or "@available(iOS 27, *)" in code, source.name
        assert "if #available(iOS 27, *)" in code or "@available(iOS 27, *)" in code, source.name
    assert {"CoreAIDigitClassifier.swift", "DigitPredictor.swift"} <= set(users)


def test_the_mac_setup_is_written_down():
    readme = (APP_DIR / "README.md").read_text(encoding="utf-8")
    for needle in ("Xcode 16", "Xcode 27", "Metal Toolchain", "xcodebuild -downloadComponent MetalToolchain",
                   "folder reference", _core_ai()["file"]):
        assert needle in readme, f"ios_app/README.md should say {needle!r}"


def test_digitkit_is_built_in_the_swift_6_language_mode():
    import re

    package_swift = (APP_DIR / "DigitKit/Package.swift").read_text(encoding="utf-8")
    version = re.match(r"// swift-tools-version:\s*(\d+)\.(\d+)", package_swift)
    assert version and (int(version[1]), int(version[2])) >= (6, 0), "tools 6.0 or later: Swift 6 mode by default"
    assert "swiftLanguageModes" not in package_swift and "swiftLanguageVersions" not in package_swift


def test_views_use_the_two_parameter_on_change():
    """iOS 17 deprecated `onChange(of:perform:)`; the app runs on iOS 16 too, so one helper
    (App/ViewCompatibility.swift) picks the two-parameter form where it exists and views call it."""
    import re

    for source in (APP_DIR / "DigitDemo").rglob("*.swift"):
        code = "\n".join(line for line in source.read_text(encoding="utf-8").splitlines()
                         if not line.lstrip().startswith("//"))
        if source.name == "ViewCompatibility.swift":
            assert "{ _, newValue in" in code and "if #available(iOS 17.0, *)" in code
            continue
        assert not re.search(r"\.onChange\(of:", code), f"{source.name}: use onValueChange(of:perform:)"
