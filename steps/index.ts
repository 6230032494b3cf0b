/**
 * The baseline, in the order the wizard walks it. Each step is one module;
 * adding a step means writing its file and listing it here.
 */
import type { AnyStep } from '../src/engine/step.ts';
import { accessModelStep } from './access-model.ts';
import { accessPolicyStep } from './access-policy.ts';
import { apiTokensStep } from './api-tokens.ts';
import { adminAccountStep } from './admin-account.ts';
import { breakGlassStep } from './break-glass.ts';
import { configBackupStep } from './config-backup.ts';
import { firewallStep } from './firewall.ts';
import { fail2banStep } from './fail2ban.ts';
import { twoFactorStep } from './two-factor.ts';
import { auditLogStep } from './audit-log.ts';
import { autoUpdatesStep } from './auto-updates.ts';
import { repositoriesStep } from './repositories.ts';
import { upgradeStep } from './upgrade.ts';
import { sshKeyStep } from './ssh-key.ts';
import { sshdHardeningStep } from './sshd-hardening.ts';
import { sysctlStep } from './sysctl.ts';

export const CATALOGUE: AnyStep[] = [adminAccountStep, sshKeyStep, breakGlassStep, sshdHardeningStep, firewallStep, fail2banStep, twoFactorStep, repositoriesStep, upgradeStep, autoUpdatesStep, sysctlStep, auditLogStep, accessModelStep, apiTokensStep, configBackupStep, accessPolicyStep];
