"""The project spec, ``graduate.yaml``: what the task is, who teaches, what data, which students.

Every field has a description (``graduate spec-help`` lists them); unknown fields are errors, so a
typo never silently falls back to a default. One module per section; everything is importable
from ``graduate.spec``.
"""

from graduate.spec.base import SPEC_FILENAME
from graduate.spec.task import MULTI_LABEL_KINDS, ParseSpec, TaskSpec
from graduate.spec.teacher import BatchSpec, FewShotSpec, LocalServerSpec, PriceSpec, TeacherSpec, TermsSpec
from graduate.spec.data import DataSourceSpec, LabelImportSpec, LabellerSpec, ReviewFileSpec, SelectionSpec, TeacherLogSpec, TestSetSpec, TrainSpec
from graduate.spec.students import StudentSpec
from graduate.spec.serve import DEFAULT_PROXY_ROUTES, MiddleSpec, MonitorSpec, PromoteSpec, ProxySpec, ServeSpec, ServingSpec
from graduate.spec.evaluation import BiasPairSpec, DEFAULT_IDENTITY_TERMS, EvaluationSpec
from graduate.spec.audit import AuditConfig, AuditSpec, EnsembleSpec, TeacherConfigSpec, audit_configs
from graduate.spec.clean import BalanceSpec, CleanSpec, DiversitySpec, FilterSpec, LabelIssueSpec, NearDuplicateSpec
from graduate.spec.store import StoreSpec
from graduate.spec.privacy import PII_TYPES, PrivacySpec
from graduate.spec.augment import AugmentSpec, CounterfactualSpec
from graduate.spec.model_selection import ModelSelectionSpec
from graduate.spec.project import ProjectSpec
from graduate.spec.load import load_spec, parse_spec, spec_hash

__all__ = ['MiddleSpec', 'ModelSelectionSpec', 'PromoteSpec', 'BatchSpec', 'MULTI_LABEL_KINDS', 'AugmentSpec', 'CounterfactualSpec', 'TermsSpec', 'PII_TYPES', 'PrivacySpec', 'SPEC_FILENAME', 'AuditConfig', 'AuditSpec', 'BalanceSpec', 'BiasPairSpec', 'CleanSpec', 'DEFAULT_IDENTITY_TERMS', 'DEFAULT_PROXY_ROUTES', 'DataSourceSpec', 'DiversitySpec', 'EnsembleSpec', 'EvaluationSpec', 'FewShotSpec', 'FilterSpec', 'LabelIssueSpec', 'LabelImportSpec', 'LabellerSpec', 'LocalServerSpec', 'MonitorSpec', 'NearDuplicateSpec', 'ParseSpec', 'PriceSpec', 'ProjectSpec', 'ProxySpec', 'ReviewFileSpec', 'SelectionSpec', 'ServeSpec', 'ServingSpec', 'StoreSpec', 'StudentSpec', 'TaskSpec', 'TeacherConfigSpec', 'TeacherLogSpec', 'TeacherSpec', 'TestSetSpec', 'TrainSpec', 'audit_configs', 'load_spec', 'parse_spec', 'spec_hash']
